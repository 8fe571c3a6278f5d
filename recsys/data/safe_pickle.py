"""Unpickler that allows only an explicit list of globals (for DiffMM/MMSSL matrices).

Plain `pickle.load` executes arbitrary code from the file; this refuses any global outside
ALLOWED with UnsafePickleError naming it.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from recsys.errors import ArtifactError, UnsafePickleError

# The globals listed in shared/data/tiktok/README.md, plus the names that numpy 2 writes for the
# same array constructors (a coo_matrix pickled today names numpy._core.multiarray._reconstruct,
# or numpy._core.numeric._frombuffer with protocol 5, or _codecs.encode with protocol 2): all
# of them only build arrays or bytes.
ALLOWED: frozenset[tuple[str, str]] = frozenset(
    {
        ("numpy", "dtype"),
        ("numpy", "ndarray"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("_codecs", "encode"),
        ("scipy.sparse.coo", "coo_matrix"),
        ("scipy.sparse._coo", "coo_matrix"),
    }
)
# Where numpy 2 / scipy keep those objects now (the pickles name the old locations).
_RESOLVE = {
    ("numpy.core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"): ("numpy._core.numeric", "_frombuffer"),
    ("scipy.sparse.coo", "coo_matrix"): ("scipy.sparse", "coo_matrix"),
    ("scipy.sparse._coo", "coo_matrix"): ("scipy.sparse", "coo_matrix"),
}


class RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: Any, source: str) -> None:
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED:
            allowed = sorted(f"{m}.{n}" for m, n in ALLOWED)
            raise UnsafePickleError(
                f"{self.source}: refusing to unpickle global {module}.{name}; only {allowed} are allowed"
            )
        mod, attr = _RESOLVE.get((module, name), (module, name))
        return getattr(__import__(mod, fromlist=[attr]), attr)


def safe_load(path: Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"expected a pickle file at {path}, found nothing")
    with open(path, "rb") as f:
        try:
            return RestrictedUnpickler(f, str(path)).load()
        except UnsafePickleError:
            raise
        except Exception as e:
            raise ArtifactError(f"{path} is not a readable pickle: {type(e).__name__}: {e}") from e
