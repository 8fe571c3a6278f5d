"""Server-side media paths of POST /v1/posts, confined to one directory.

The media root is `RECSYS_MEDIA_ROOT`, else the `media/` directory of the dataset the bundle was
built from (recorded in its manifest); with neither, every path is refused. A path is read only
when it resolves (symlinks followed) to a regular file inside the root; every refusal carries the
same message whatever the reason (outside the root, missing, a directory, unreadable), so the
answers do not tell which files exist on the server.
"""

from __future__ import annotations

import os
from pathlib import Path

from recsys.errors import SchemaError


def refused(name: str) -> SchemaError:
    return SchemaError(f"`{name}` must name a readable media file under the server's media root "
                       "(RECSYS_MEDIA_ROOT; relative paths are read from it), or send `features`")


def media_root(configured: Path | None, manifest: dict) -> Path | None:
    """The directory media paths must lie in (resolved), or None when there is none."""
    if configured is not None:
        return Path(configured).resolve()
    ds = (manifest.get("dataset") or {}).get("path")
    if ds and (Path(ds) / "media").is_dir():
        return (Path(ds) / "media").resolve()
    return None


def resolve_media_path(name: str, value: str, root: Path | None) -> Path:
    """`value` (absolute, or relative to `root`) as a readable file inside `root`, else `refused`."""
    if root is None or "\x00" in value:
        raise refused(name)
    try:
        p = (root / value).resolve(strict=True)  # an absolute `value` replaces `root`
    except (OSError, RuntimeError):
        raise refused(name) from None
    if not p.is_relative_to(root) or not p.is_file() or not os.access(p, os.R_OK):
        raise refused(name)
    return p
