"""Incremental encoding of a dataset's posts into the feature store, and online encoding of one post.

    report = encode_dataset(Path("data/synth"))                  # text, image, video with content
    report["modalities"]["text"]  -> {"encoded": 3, "reused": 997, "absent": 0, "failed": 0, ...}

Per post and modality a content hash = sha256(encoder fingerprint + text / file bytes). A row of
the existing store whose hash is unchanged is reused; new or changed posts are encoded; rows of
posts no longer in posts.parquet are dropped. Each modality is written atomically; while a long
run encodes, the rows done so far are checkpointed to `features/<m>.npz.partial`, so an
interrupted run resumes where it stopped. Media file digests are cached in `features/<m>.files`
by (path, size, mtime_ns), so a rerun stats files instead of re-reading them.

content_hash values:
    ""                 the post has no content for the modality (null / blank text, null path)
    "<64 hex>"         encoded
    "!<64 hex>:<why>"  the file is there but could not be decoded; skipped on later runs while the
                       file bytes and the encoder are unchanged (pass force=True to retry anyway)
    "!:<why>"          the file is missing; checked again on every run
"""

from __future__ import annotations

import hashlib
import json
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
from recsys.io import sha256_file, write_npz

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
    checkpoint_every_s: float | None = 60.0,
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
        force: re-encode every post (ignore the existing store and any checkpoint).
        checkpoint_every_s: while encoding, write the rows done so far to
            `features/<modality>.npz.partial` this often (None: never); an interrupted run's
            checkpoint is reused by the next one (counted in "reused" and "resumed") and removed
            once the modality is saved.
    Returns a report: {"root", "n_posts", "device", "seconds", "modalities": {m: {"encoder",
        "fingerprint", "dim", "encoded", "reused", "resumed", "absent", "failed", "seconds",
        "encode_seconds", "posts_per_s", "path"}}}. posts_per_s counts the posts sent to the
        encoder over the time spent in it (decode + forward; excludes hashing and model loading).
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
            progress, device, force, built, checkpoint_every_s,
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
    checkpoint_every_s: float | None,
) -> dict[str, Any]:
    t0 = time.perf_counter()
    encoder: Encoder | None = enc_arg if _is_encoder(enc_arg) else None
    spec = encoder.spec if encoder is not None else parse_spec(m, enc_arg)
    fp = spec.fingerprint
    N = len(post_ids)

    # 1. content hashes (and the input each post would be encoded from)
    hashes = np.empty(N, dtype=object)
    inputs: list[str | Path | None] = [None] * N
    file_cache = {} if (force or m == "text") else _load_file_cache(root, m)
    seen_files: dict[str, tuple[int, int, str]] = {}
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
            digest = _file_digest(path, v, file_cache, seen_files)
            hashes[i] = _sha(fp, digest.encode()) if digest else "!:missing file"
    if m != "text":
        _save_file_cache(root, m, seen_files)

    # 2. reuse rows of the existing store (and of an interrupted run's checkpoint) whose hash is unchanged
    partial_path = _partial_path(root, m)
    if force:
        partial_path.unlink(missing_ok=True)
    old = None if force else _load_existing(root, m)
    if old is not None and old.meta.get("fingerprint") != fp:
        logger.info("%s: encoder changed (%s -> %s); re-encoding every post", m, old.meta.get("fingerprint"), fp)
        old = None
    partial = None if force else _load_partial(partial_path, m, fp)
    sources = [src for src in (old, partial) if src is not None]
    lookups = [{int(p): r for r, p in enumerate(src.post_ids)} for src in sources]
    reuse_src = np.full(N, -1, dtype=np.int64)  # index into sources
    reuse_row = np.full(N, -1, dtype=np.int64)  # row in that source
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
        for k, (src, lookup) in enumerate(zip(sources, lookups)):
            r = lookup.get(int(post_ids[i]), -1)
            if r < 0:
                continue
            old_h = str(src.content_hash[r])
            if old_h == h and src.present[r]:
                reuse_src[i], reuse_row[i] = k, r
                break
            if old_h.startswith(f"!{h}:"):  # known undecodable file, unchanged
                hashes[i] = old_h
                n_failed += 1
                break
        else:
            todo.append(i)
    if n_missing > MAX_WARNINGS:
        logger.warning("%s: %d media files missing in all (first %d listed above)", m, n_missing, MAX_WARNINGS)

    # 3. encode the rest in batches; checkpoint progress so an interrupted run resumes
    if todo and encoder is None:
        encoder = _build(m, spec, device, built)
    dim = _dim(m, spec, encoder, sources[0] if sources else None, device, built)
    data = np.zeros((N, dim), np.float32)
    present = np.zeros(N, bool)
    for k, src in enumerate(sources):
        have = reuse_src == k
        data[have] = src.data[reuse_row[have]]
        present[have] = True
    if m == "text":  # similar lengths per batch -> less padding
        todo.sort(key=lambda i: len(inputs[i]))
    n_encoded = 0
    done: list[int] = []  # rows encoded (or failed) in this run, for checkpoints
    t_enc = last_ckpt = time.perf_counter()
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
        done.extend(idx)
        bar.update(len(idx))
        if checkpoint_every_s is not None and time.perf_counter() - last_ckpt >= checkpoint_every_s and s + batch_size < len(todo):
            rows = np.array(sorted(done), dtype=np.int64)
            _save_partial(partial_path, m, fp, post_ids[rows], data[rows], present[rows], hashes[rows].astype(str))
            last_ckpt = time.perf_counter()
    bar.close()
    enc_s = time.perf_counter() - t_enc

    meta = {
        "encoder": str(spec),
        "fingerprint": fp,
        "name": encoder.name if encoder is not None else (sources[0].meta.get("name", str(spec)) if sources else str(spec)),
        "source": "recsys.encode",
        "n_present": int(present.sum()),
        "n_failed": int(n_failed),
    }
    feats = ModalityFeatures(m, post_ids, data, present, hashes.astype(str), meta)
    path = save_modality(root, feats)
    partial_path.unlink(missing_ok=True)
    n_reused = int((reuse_src >= 0).sum())
    n_resumed = int((reuse_src == len(sources) - 1).sum()) if partial is not None else 0  # partial is last
    secs = time.perf_counter() - t0
    summary = {
        "encoder": str(spec),
        "fingerprint": fp,
        "dim": dim,
        "encoded": n_encoded,
        "reused": n_reused,
        "resumed": n_resumed,
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


def _file_digest(path: Path, rel: str, cache: dict, seen: dict) -> str | None:
    """sha256 of a media file, or None when it is missing. A file whose size and mtime_ns match
    the previous run's are trusted unchanged (like git's index), so reruns do not re-read every
    byte of every video; `force=True` re-reads everything."""
    try:
        st = path.stat()
    except OSError:
        return None
    if not path.is_file():
        return None
    hit = cache.get(rel)
    if hit is not None and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
        digest = hit[2]
    else:
        digest = sha256_file(path)
    seen[rel] = (st.st_size, st.st_mtime_ns, digest)
    return digest


def _file_cache_path(root: Path, m: str) -> Path:
    return features_dir(root) / f"{m}.files"  # npz content; not *.npz: never listed as a modality


def _load_file_cache(root: Path, m: str) -> dict[str, tuple[int, int, str]]:
    path = _file_cache_path(root, m)
    if not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as z:
            return {str(r): (int(a), int(b), str(h)) for r, a, b, h in zip(z["rel_path"], z["size"], z["mtime_ns"], z["sha256"])}
    except (KeyError, ValueError, OSError) as e:
        logger.warning("%s: ignoring unreadable file-hash cache %s (%s)", m, path, e)
        return {}


def _save_file_cache(root: Path, m: str, seen: dict[str, tuple[int, int, str]]) -> None:
    rels = sorted(seen)
    write_npz(
        _file_cache_path(root, m),
        rel_path=np.array(rels, dtype=str),
        size=np.array([seen[r][0] for r in rels], dtype=np.int64),
        mtime_ns=np.array([seen[r][1] for r in rels], dtype=np.int64),
        sha256=np.array([seen[r][2] for r in rels], dtype=str),
    )


def _partial_path(root: Path, m: str) -> Path:
    return features_dir(root) / f"{m}.npz.partial"  # not *.npz: never listed as a modality


def _save_partial(path: Path, m: str, fp: str, post_ids, data, present, hashes) -> None:
    write_npz(path, post_id=post_ids, data=data, present=present, content_hash=hashes,
              meta_json=np.array(json.dumps({"modality": m, "fingerprint": fp, "partial": True})))


def _load_partial(path: Path, m: str, fp: str) -> ModalityFeatures | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta_json"]))
            if meta.get("fingerprint") != fp:
                return None
            feats = ModalityFeatures(m, z["post_id"], z["data"], z["present"], z["content_hash"], meta)
    except (KeyError, ValueError, OSError) as e:
        logger.warning("%s: ignoring unreadable checkpoint %s (%s)", m, path, e)
        return None
    logger.info("%s: resuming from checkpoint %s (%d posts done)", m, path, len(feats.post_ids))
    return feats


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
