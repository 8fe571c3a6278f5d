#!/usr/bin/env bash
# Create or update .venv/ at the project root with the pinned stack. Idempotent: a stamp file
# records the hash of the requirement files; nothing is reinstalled while it matches.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py="${PYTHON:-python3.11}"
command -v "$py" >/dev/null 2>&1 || py=python3
stamp=.venv/.recsys-installed
want="$(cat requirements/lock.txt requirements/torchrec.txt pyproject.toml | sha256sum | cut -d" " -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x .venv/bin/recsys ]; then
  exit 0
fi
echo "[bootstrap] installing the pinned stack into .venv/ (first run: a few minutes)" >&2
[ -x .venv/bin/python ] || "$py" -m venv .venv
pip=(.venv/bin/python -m pip --disable-pip-version-check -q)
"${pip[@]}" install --upgrade pip==25.3 setuptools wheel >/dev/null
"${pip[@]}" install -r requirements/lock.txt
# torchrec declares fbgemm-gpu (CUDA); fbgemm-gpu-cpu above supplies the ops, so skip its deps.
"${pip[@]}" install --no-deps -r requirements/torchrec.txt
"${pip[@]}" install --no-deps --no-build-isolation -e .
echo "$want" > "$stamp"
echo "[bootstrap] done: $(.venv/bin/python -c 'import torch,torchrec,faiss;print("torch",torch.__version__,"torchrec",torchrec.__version__ if hasattr(torchrec,"__version__") else "?","faiss",faiss.__version__)')" >&2
