"""The caller's ids at the API's edge: users, posts and authors are strings (UUIDs, slugs,
handles) or integers, as the bundle's dataset had them (`manifest.id_types`); inside, every id is
the internal int64 of `recsys.ids`.

    codec = IdCodec.from_bundle(bundle)
    codec.inward("user", "alice", "user_id")   -> internal int64 (BadInput for the wrong type)
    codec.posts_out([internal, ...])           -> the caller's post ids (keys for string posts)

A post added live with a string id is remembered (`remember_post`) so it is answered in the
caller's id; the bundle's own posts come from its `id_map_post.parquet`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np

from recsys.errors import SchemaError
from recsys.ids import ENTITIES, IdMap, check_key, internal_id
from serving.requests import BadInput


class IdCodec:
    def __init__(self, types: dict[str, str], maps: dict[str, IdMap]) -> None:
        self.types = {e: types.get(e, "int") for e in ENTITIES}
        self.maps = maps
        self.live_posts: dict[int, str] = {}  # internal id -> key of posts added online

    @classmethod
    def from_bundle(cls, bundle) -> "IdCodec":
        return cls(dict(bundle.manifest.get("id_types", {})), dict(getattr(bundle, "id_maps", {}) or {}))

    def strings(self, entity: str) -> bool:
        return self.types[entity] == "string"

    def inward(self, entity: str, value, field: str, where: str = "body") -> int:
        """One id as the caller sent it -> internal int64."""
        if self.types[entity] == "string":
            if not isinstance(value, str):
                raise BadInput(f"`{field}`: this deployment identifies {entity}s by strings, got the integer {value}",
                               _loc(where, field))
            try:
                return internal_id(check_key(value, f"`{field}`"))
            except SchemaError as e:
                raise BadInput(str(e), _loc(where, field)) from None
        if type(value) is not int and (not isinstance(value, int) or isinstance(value, bool)):
            raise BadInput(f"`{field}`: this deployment identifies {entity}s by integers, got {value!r}", _loc(where, field))
        return int(value)

    def inward_path(self, entity: str, raw: str, field: str):
        """A path segment (always text) -> (the caller's id in its type, internal int64)."""
        if self.strings(entity):
            return raw, self.inward(entity, raw, field, "path")
        try:
            value = int(raw)
        except ValueError:
            raise BadInput(f"`{field}`: this deployment identifies {entity}s by integers, got {raw!r}", ("path", field)) from None
        if not -(2**63) <= value < 2**63:
            raise BadInput(f"`{field}`: integer ids are int64, got {raw}", ("path", field))
        return value, value

    def many(self, entity: str, values: Iterable, field: str) -> list[int]:
        return [self.inward(entity, v, field) for v in values]

    def remember_post(self, internal: int, key) -> None:
        if self.strings("post"):
            self.live_posts[int(internal)] = str(key)

    def posts_out(self, ids: Sequence[int | None]) -> list:
        """Internal post ids (None passes through) -> the caller's ids."""
        if not self.strings("post"):
            return list(ids)
        m = self.maps.get("post")
        arr = np.array([-1 if i is None else i for i in ids], np.int64)
        keys = m.to_external(arr) if m is not None else [None] * len(arr)
        out = []
        for i, k in zip(ids, keys):
            out.append(None if i is None else (k if k is not None else self.live_posts.get(int(i), str(i))))
        return out

    def carry_over(self, old: "IdCodec") -> None:
        """Live posts' keys survive a hot swap (posts the new bundle does not hold yet)."""
        self.live_posts.update(old.live_posts)


def _loc(where: str, field: str) -> tuple:
    """"events[0].user_id" -> (where, "events", 0, "user_id")."""
    parts = [p for p in re.split(r"[.\[\]]+", field) if p]
    return (where, *(int(p) if p.isdigit() else p for p in parts))


def internal_request(codec: IdCodec, req):
    """A RecommendRequest in the caller's ids -> the same request in internal ids (`req` itself
    when every id is internal already: integer ids, checked)."""
    f = req.filters
    authors = codec.many("author", f.exclude_authors, "filters.exclude_authors")
    posts = codec.many("post", f.exclude_post_ids, "filters.exclude_post_ids")
    user = None if req.user_id is None else codec.inward("user", req.user_id, "user_id")
    history = codec.many("post", req.history, "history")
    if user == req.user_id and history == req.history and posts == f.exclude_post_ids and authors == f.exclude_authors:
        return req
    filters = f.model_copy(update={"exclude_authors": authors, "exclude_post_ids": posts})
    return req.model_copy(update={"user_id": user, "history": history, "filters": filters})


def internal_post(codec: IdCodec, post):
    """A NewPost in the caller's ids -> internal ids (its key remembered for answers)."""
    pid = codec.inward("post", post.post_id, "post_id")
    author = None if post.author_id is None else codec.inward("author", post.author_id, "author_id")
    return post.model_copy(update={"post_id": pid, "author_id": author})


def internal_events(codec: IdCodec, events: list) -> list:
    return [e.model_copy(update={"user_id": codec.inward("user", e.user_id, f"events[{i}].user_id"),
                                 "post_id": codec.inward("post", e.post_id, f"events[{i}].post_id")})
            for i, e in enumerate(events)]
