"""Incremental encoding of a dataset's posts into the feature store, and online encoding of one post.

    report = encode_dataset(Path("data/synth"))                  # text, image, video with content
    report["modalities"]["text"]  -> {"encoded": 3, "reused": 997, "absent": 0, "failed": 0, ...}

Per post and modality a content hash = sha256(encoder fingerprint + text / file bytes). A row of
the existing store whose hash is unchanged is reused; new or changed posts are encoded; rows of
posts no longer in posts.parquet are dropped. Each modality is written atomically.

content_hash values:
    ""                 the post has no content for the modality (null / blank text, null path)
    "<64 hex>"         encoded
    "!<64 hex>:<why>"  the file is there but could not be decoded; skipped on later runs while the
                       file bytes and the encoder are unchanged (pass force=True to retry anyway)
    "!:<why>"          the file is missing; checked again on every run
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from recsys.dataset import load_dataset
from recsys.encoders.base import MODALITIES, Encoder, EncoderSpec, build_encoder, default_device, parse_spec
from recsys.errors import ArtifactError, ConfigError
from recsys.features import ModalityFeatures, features_dir, load_modality, save_modality
from recsys.io import sha256_file

logger = logging.getLogger(__name__)

COLUMN = {"text": "text", "image": "image_path", "video": "video_path"}
DEFAULT_BATCH = {"text": 64, "image": 32, "video": 4}
MAX_WARNINGS = 5  # missing files listed one by one per modality, then a count

EncoderArg = str | dict | EncoderSpec | Encoder


def encode_dataset(
    root: Path,
    modalities: list[str] | tuple[str, ...] | None = None,
    encoders: dict[str, EncoderArg] | None = None,
    batch_size: int | dict[str, int] | None = None,
    progress: bool = True,
    device: str | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Encode the posts of the dataset at `root` into `root/features/<modality>.npz`.

    Args:
        modalities: subset of ("text", "image", "video"); default: those some post has content for.
        encoders: modality -> spec string / dict / EncoderSpec, or an already built encoder
            (reused as is). Missing modalities use the defaults (`recsys.encoders.DEFAULT_SPECS`).
        batch_size: posts per forward pass; an int applies to text and image, videos use
            max(1, batch_size // frames); a dict sets each modality. Default {text 64, image 32, video 4}.
        progress: tqdm bars (also off when TQDM_DISABLE=1).
        device: "cpu" / "cuda"; default CUDA when available.
        force: re-encode every post (ignore the existing store).
    Returns a report: {"root", "n_posts", "device", "seconds", "modalities": {m: {"encoder",
        "fingerprint", "dim", "encoded", "reused", "absent", "failed", "seconds", "encode_seconds",
        "posts_per_s", "path"}}}.
    """
    t_all = time.perf_counter()
    root = Path(root)
    ds = load_dataset(root)
    posts = ds.posts
    encoders = dict(encoders or {})
    unknown = set(encoders) - set(MODALITIES)
    if unknown:
        raise ConfigError(f"encoders given for unknown modality(ies) {sorted(unknown)}; expected {list(MODALITIES)}")
    if modalities is None:
        modalities = [m for m in MODALITIES if _has_content(posts[COLUMN[m]], m)]
    else:
        modalities = list(dict.fromkeys(modalities))
        bad = [m for m in modalities if m not in MODALITIES]
        if bad:
            raise ConfigError(f"unknown modality(ies) {bad}; expected some of {list(MODALITIES)}")
    if not force:  # never silently replace features this pipeline did not make (e.g. imported ones)
        for m in modalities:
            old = _load_existing(root, m)
            if old is not None and old.meta.get("source") != "recsys.encode":
                raise ConfigError(
                    f"{features_dir(root) / (m + '.npz')} holds {m} features not made by `recsys encode` "
                    f"(encoder {old.meta.get('encoder')!r}, source {old.meta.get('source')!r}); "
                    f"pass force=True (--force) to replace them"
                )
    device = device or default_device()
    report: dict[str, Any] = {"root": str(root), "n_posts": len(posts), "device": device, "modalities": {}}
    built: dict[str, Encoder] = {}
    post_ids = posts["post_id"].to_numpy().astype(np.int64)
    for m in modalities:
        values = posts[COLUMN[m]].to_list()
        report["modalities"][m] = _encode_modality(
            root, m, post_ids, values, encoders.get(m), _batch(batch_size, m, encoders.get(m)),
            progress, device, force, built,
        )
    report["seconds"] = round(time.perf_counter() - t_all, 3)
    return report


def _encode_modality(
    root: Path,
    m: str,
    post_ids: np.ndarray,
    values: list[str | None],
    enc_arg: EncoderArg | None,
    batch_size: int,
    progress: bool,
    device: str,
    force: bool,
    built: dict[str, Encoder],
) -> dict[str, Any]:
    t0 = time.perf_counter()
    encoder: Encoder | None = enc_arg if _is_encoder(enc_arg) else None
    spec = encoder.spec if encoder is not None else parse_spec(m, enc_arg)
    fp = spec.fingerprint
    N = len(post_ids)

    # 1. content hashes (and the input each post would be encoded from)
    hashes = np.empty(N, dtype=object)
    inputs: list[str | Path | None] = [None] * N
    for i, v in enumerate(values):
        if m == "text":
            if v is None or not v.strip():
                hashes[i] = ""
            else:
                hashes[i] = _sha(fp, v.encode("utf-8"))
                inputs[i] = v
        elif v is None or not str(v).strip():
            hashes[i] = ""
        else:
            path = root / v
            inputs[i] = path
            hashes[i] = _sha(fp, sha256_file(path).encode()) if path.is_file() else "!:missing file"

    # 2. reuse rows of the existing store whose hash is unchanged
    old = None if force else _load_existing(root, m)
    old_rows: dict[int, int] = {}
    if old is not None:
        if old.meta.get("fingerprint") != fp:
            logger.info("%s: encoder changed (%s -> %s); re-encoding every post", m, old.meta.get("fingerprint"), fp)
        else:
            old_rows = {int(p): r for r, p in enumerate(old.post_ids)}
    reuse = np.full(N, -1, dtype=np.int64)  # row in the old store
    todo: list[int] = []
    n_absent = n_failed = n_missing = 0
    for i, h in enumerate(hashes):
        if h == "":
            n_absent += 1
            continue
        if h.startswith("!:"):  # missing file
            n_failed += 1
            n_missing += 1
            if n_missing <= MAX_WARNINGS:
                logger.warning("%s post %d: %s (%s); marked absent", m, post_ids[i], h[2:], inputs[i])
            continue
        r = old_rows.get(int(post_ids[i]), -1)
        if r >= 0:
            old_h = str(old.content_hash[r])
            if old_h == h and old.present[r]:
                reuse[i] = r
                continue
            if old_h.startswith(f"!{h}:"):  # known undecodable file, unchanged
                hashes[i] = old_h
                n_failed += 1
                continue
        todo.append(i)

    if n_missing > MAX_WARNINGS:
        logger.warning("%s: %d media files missing in all (first %d listed above)", m, n_missing, MAX_WARNINGS)

    # 3. encode the rest in batches
    if todo and encoder is None:
        encoder = _build(m, spec, device, built)
    dim = _dim(m, spec, encoder, old if (reuse >= 0).any() else None, device, built)
    data = np.zeros((N, dim), np.float32)
    present = np.zeros(N, bool)
    if (reuse >= 0).any():
        have = reuse >= 0
        data[have] = old.data[reuse[have]]
        present[have] = True
    if m == "text":  # similar lengths per batch -> less padding
        todo.sort(key=lambda i: len(inputs[i]))
    n_encoded = 0
    t_enc = time.perf_counter()
    bar = _tqdm(total=len(todo), desc=f"encode {m}", unit="post", disable=not progress)
    for s in range(0, len(todo), batch_size):
        idx = todo[s : s + batch_size]
        batch = [inputs[i] for i in idx]
        if m == "text":
            out = encoder.encode_texts(batch)
        elif m == "image":
            out = encoder.encode_images(batch)
        else:
            out = encoder.encode_videos(batch)
        for j, i in enumerate(idx):
            if out.present[j]:
                data[i] = out.data[j]
                present[i] = True
                n_encoded += 1
            else:
                hashes[i] = f"!{hashes[i]}:{_reason(out.errors[j])}"
                n_failed += 1
        bar.update(len(idx))
    bar.close()
    enc_s = time.perf_counter() - t_enc

    meta = {
        "encoder": str(spec),
        "fingerprint": fp,
        "name": encoder.name if encoder is not None else (old.meta.get("name") if old is not None else str(spec)),
        "source": "recsys.encode",
        "n_present": int(present.sum()),
        "n_failed": int(n_failed),
    }
    feats = ModalityFeatures(m, post_ids, data, present, hashes.astype(str), meta)
    path = save_modality(root, feats)
    n_reused = int((reuse >= 0).sum())
    secs = time.perf_counter() - t0
    summary = {
        "encoder": str(spec),
        "fingerprint": fp,
        "dim": dim,
        "encoded": n_encoded,
        "reused": n_reused,
        "absent": n_absent,
        "failed": n_failed,
        "seconds": round(secs, 3),
        "encode_seconds": round(enc_s, 3),
        "posts_per_s": round(len(todo) / enc_s, 2) if todo and enc_s > 0 else None,
        "path": str(path),
    }
    logger.info(
        "%s: %d encoded, %d reused, %d absent, %d failed in %.1f s (%s)",
        m, n_encoded, n_reused, n_absent, n_failed, secs, spec,
    )
    return summary


def build_encoders(
    specs: dict[str, EncoderArg] | None = None,
    modalities: list[str] | tuple[str, ...] = MODALITIES,
    device: str | None = None,
) -> dict[str, Encoder]:
    """Load encoders for `modalities` (default specs where `specs` has none). The video encoder
    shares the image model when both use the same image spec."""
    specs = dict(specs or {})
    device = device or default_device()
    built: dict[str, Encoder] = {}
    out: dict[str, Encoder] = {}
    for m in sorted(modalities, key=lambda m: MODALITIES.index(m)):  # image before video
        arg = specs.get(m)
        out[m] = arg if _is_encoder(arg) else _build(m, parse_spec(m, arg), device, built)
        if m == "image":
            built.setdefault("image", out[m])
    return out


def encode_post_content(
    text: str | None,
    image_path: Path | str | None,
    video_path: Path | str | None,
    encoders: dict[str, Encoder],
) -> dict[str, tuple[np.ndarray, bool]]:
    """Encode one post for online use: {modality: (vector float32 (D,), present)} for each
    modality in `encoders`. Missing content or an undecodable file -> (zeros, False), with a
    warning for the latter."""
    out: dict[str, tuple[np.ndarray, bool]] = {}
    for m, enc in encoders.items():
        if m == "text":
            res = enc.encode_texts([text])
        elif m == "image":
            res = enc.encode_images([image_path]) if image_path else None
        elif m == "video":
            res = enc.encode_videos([video_path]) if video_path else None
        else:
            raise ConfigError(f"unknown modality {m!r}; expected some of {list(MODALITIES)}")
        if res is None:
            out[m] = (np.zeros(enc.dim, np.float32), False)
        else:
            out[m] = (res.data[0], bool(res.present[0]))
    return out


# ---------------------------------------------------------------------------------------------


def _has_content(col, m: str) -> bool:
    if m == "text":
        return bool(col.drop_nulls().str.strip_chars().str.len_chars().gt(0).any())
    return col.drop_nulls().len() > 0


def _is_encoder(x: Any) -> bool:
    return x is not None and hasattr(x, "fingerprint") and hasattr(x, "dim") and not isinstance(x, EncoderSpec)


def _build(m: str, spec: EncoderSpec, device: str, built: dict[str, Encoder]) -> Encoder:
    key = f"{m}:{spec}"
    if key not in built:
        if m == "video" and "image" in built and built["image"].spec == spec.image_spec:
            from recsys.encoders.video import VideoEncoder

            built[key] = VideoEncoder(spec, device=device, image_encoder=built["image"])
        else:
            built[key] = build_encoder(m, spec, device=device)
        if m == "image":
            built.setdefault("image", built[key])
    return built[key]


def _dim(m: str, spec: EncoderSpec, encoder: Encoder | None, old: ModalityFeatures | None, device: str, built) -> int:
    if encoder is not None:
        return int(encoder.dim)
    if old is not None:
        return old.dim
    d = spec.known_dim()
    return int(d) if d is not None else int(_build(m, spec, device, built).dim)


def _batch(batch_size: int | dict[str, int] | None, m: str, enc_arg: Any) -> int:
    if isinstance(batch_size, dict):
        b = batch_size.get(m, DEFAULT_BATCH[m])
    elif batch_size is None:
        b = DEFAULT_BATCH[m]
    elif m == "video":
        spec = enc_arg.spec if _is_encoder(enc_arg) else parse_spec("video", enc_arg)
        b = max(1, int(batch_size) // int(spec.option("frames")))
    else:
        b = batch_size
    if int(b) < 1:
        raise ConfigError(f"batch size must be >= 1, got {b} for {m}")
    return int(b)


def _load_existing(root: Path, m: str) -> ModalityFeatures | None:
    if not (features_dir(root) / f"{m}.npz").is_file():
        return None
    try:
        return load_modality(root, m)
    except ArtifactError as e:
        logger.warning("%s: existing feature store unreadable (%s); re-encoding every post", m, e)
        return None


def _sha(fingerprint: str, content: bytes) -> str:
    h = hashlib.sha256(fingerprint.encode())
    h.update(b"\0")
    h.update(content)
    return h.hexdigest()


def _reason(err: str | None) -> str:
    return " ".join((err or "undecodable").split())[:120]


def _tqdm(**kw):
    from tqdm.auto import tqdm

    if os.environ.get("TQDM_DISABLE", "").lower() in ("1", "true", "yes"):
        kw["disable"] = True
    return tqdm(**kw)
