"""Everything a running server holds for one bundle, composed from one room per topic:

    catalogue.Catalogue   read-only bundle lookups (id -> row, author -> rows, age, popularity)
    online.Online         posts added, posts deleted, users' events since the bundle (in memory)
    profiles.Profiles     user vectors and their per-user cache
    requests.prepare      a request checked and resolved into a `Prepared`
    search.Search         fetch sizing, shared / selector / exact search, delta merge, author cap
    reply.Replies         hits -> post ids, scores and "why" -> a `Reply` (JSON body)
    ingest.Ingest         a new post's features or media -> latent and vector

    ServingState.load(settings)     bundle (immutable) + run model + online overlay
    .recommend([...]) / .recommend_async(req)
    .similar(post_id, k)
    .add_post / .delete_post / .add_events   online writes (under the app's write lock)
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import numpy as np

from index import bundle as B
from recsys.online_log import records
from serving import requests as R
from serving.batcher import AsyncCombiner
from serving.catalogue import EMPTY, Catalogue, load_model
from serving.ids import IdCodec
from serving.ingest import Ingest
from serving.media_paths import media_root
from serving.online import Delta, Online
from serving.profiles import Profiles
from serving.reply import Replies, Reply
from serving.requests import NULL_TS, BadInput, NotFound, Prepared, now_us
from serving.schemas import NewPost, RecommendRequest
from serving.search import Search, Stats
from serving.settings import Settings
from serving.why import WhyModality

logger = logging.getLogger(__name__)

__all__ = ["BadInput", "NotFound", "ServingState", "load_model"]


class ServingState:
    def __init__(self, bundle: B.Bundle, model: Any, settings: Settings) -> None:
        self.bundle, self.model, self.settings = bundle, model, settings
        self.version = bundle.version
        self.loaded_at = time.time()
        self.catalogue = cat = Catalogue(bundle)
        self.n, self.d = cat.n, cat.d
        self.online = Online(cat, settings.user_history_keep)
        self.user_profiles = Profiles(model, self.online, settings.profile_cache)
        self.max_history = self.user_profiles.max_history
        self.search = Search(cat, settings, Stats())
        self.ids = IdCodec.from_bundle(bundle)  # the caller's ids <-> internal ids
        self.replies = Replies(cat, self.online, self.ids, WhyModality(bundle, model))  # why_modality: serving.why
        self.ingest = Ingest(model, settings, media_root(settings.media_root, bundle.manifest))
        self.combiner = self.search.combiner
        self.async_combiner = AsyncCombiner(self.search.search_plain, settings.microbatch_max,
                                            on_batch=lambda n: self.stats.batch(n), max_inflight=settings.microbatch_inflight,
                                            finish_fn=self.finish_shared)

    @classmethod
    def load(cls, settings: Settings, version: str | None = None) -> ServingState:
        bundle = B.load_bundle(settings.index_root, version)
        return cls(bundle, load_model(bundle), settings)

    # --- the rooms' state, read through here by the app, metrics and tests -------------------

    @property
    def stats(self) -> Stats:
        return self.search.stats

    @stats.setter
    def stats(self, stats: Stats) -> None:  # the app shares one Stats among the states it serves
        self.search.stats = stats

    @property
    def delta(self) -> Delta:
        return self.online.delta

    @property
    def tomb_rows(self) -> np.ndarray:
        return self.online.tomb_rows

    def rows_of(self, post_ids: np.ndarray) -> np.ndarray:
        return self.catalogue.rows_of(post_ids)

    def exists(self, pid: int) -> bool:
        return self.online.exists(pid)

    def latents_of(self, post_ids: np.ndarray, delta: Delta | None = None) -> np.ndarray:
        return self.online.latents_of(post_ids, delta)

    def user_history(self, user_id: int) -> tuple[bool, np.ndarray, np.ndarray]:
        return self.online.user_history(user_id)

    # --- recommendation --------------------------------------------------------------------

    def prepare(self, req: RecommendRequest) -> Prepared:
        return R.prepare(req, self.settings, self.catalogue, self.online, self.user_profiles)

    def profiles(self, preps: list[Prepared], cacheable: list[bool] | None = None) -> None:
        """Fill `.query` of prepared requests (Profiles.fill)."""
        self.user_profiles.fill(preps, cacheable)

    def recommend(self, reqs: list[RecommendRequest], batched_call: bool = False) -> list[dict]:
        """Requests -> [{"items", "fallback", "fallback_reason", "user_known"}] (one FAISS call for
        all personalised requests of a batch call; single calls go through the combiner)."""
        return [r.to_dict() for r in self.recommend_prepared([self.prepare(r) for r in reqs], batched_call)]

    async def recommend_async(self, req: RecommendRequest) -> Reply:
        """One request from the event loop, same answer as `recommend([req])[0]` (as a Reply).

        The common case (a cached user vector, a filter that post-filters a shared search) is
        prepared on the loop and awaits the shared FAISS call (`AsyncCombiner`: concurrent
        requests share it, no request thread), whose executor job also post-filters, explains and
        renders the reply (`finish_shared`). Everything else (a user vector to compute, the
        popular fallback, a selector or exact search, a short answer to widen) runs `recommend`'s
        path in a worker thread."""
        loop = asyncio.get_running_loop()
        p = self.prepare(req)
        prof = p.profile
        search = self.search
        if prof is None or prof.query is None or not search.shared_ok(p):
            return (await loop.run_in_executor(None, self.recommend_prepared, [p]))[0]
        p.query = prof.query
        fetch = search.fetch(p)
        reply = await self.async_combiner.search(p.query, fetch, p)
        search.stats.overfetch["post_filter"] += int(fetch > p.k)
        if isinstance(reply, Exception):
            raise reply
        if reply is None:  # short after post-filtering: widen inside FAISS (worker thread)
            hits = await loop.run_in_executor(None, search.selector_search, p, fetch, search.eligible(p))
            reply = self.replies.respond(p, hits)
        self._count_fallbacks([p])
        return reply

    def finish_shared(self, preps: list[Prepared], hits: list[tuple[np.ndarray, np.ndarray]]) -> list[Reply | Exception | None]:
        """What follows a shared search, for its whole batch (run by the AsyncCombiner right after
        the search): per request post-filter to k (`Search.finish`), the reply with its "why",
        rendered to JSON. None for a request short of k after post-filtering (its caller widens);
        the exception for a request that failed (it fails alone, not its whole batch)."""
        out: list[Reply | Exception | None] = []
        for p, (scores, rows) in zip(preps, hits):
            try:
                found = self.search.finish(p, scores, rows, exhaustive=False, post_filter=True)
                reply = None if found is None else self.replies.respond(p, found)
                if reply is not None:
                    reply.to_json(self.version)  # memoised for the route
            except Exception as e:
                reply = e
            out.append(reply)
        return out

    def recommend_prepared(self, preps: list[Prepared], batched_call: bool = False) -> list[Reply]:
        self.profiles(preps)
        out: list[Reply | None] = [None] * len(preps)
        personal = [i for i, p in enumerate(preps) if p.query is not None]
        for i, p in enumerate(preps):
            if p.query is None:
                p.fallback_reason = "no_history_popular" if not len(p.hist) else "no_profile_popular"
                out[i] = self.replies.respond(p, self.search.popular(p))
        if personal:
            if batched_call and len(personal) > 1:
                results = self.search.search_many([preps[i] for i in personal])
            else:
                results = [self.search.search_one(preps[i]) for i in personal]
            for i, items in zip(personal, results):
                out[i] = self.replies.respond(preps[i], items)
        self._count_fallbacks(preps)
        return out  # type: ignore[return-value]

    def _count_fallbacks(self, preps: list[Prepared]) -> None:
        fallbacks = self.stats.fallbacks
        for p in preps:
            if p.fallback_reason:
                fallbacks[p.fallback_reason] = fallbacks.get(p.fallback_reason, 0) + 1

    def similar(self, post_id: int, k: int) -> list[dict]:
        if not 1 <= k <= self.settings.k_max:
            raise BadInput(f"`k` must be in [1, {self.settings.k_max}], got {k}")
        row = int(self.rows_of(np.array([post_id], np.int64))[0])
        online = self.online
        delta, tomb = online.delta, online.tomb_rows
        if row >= 0 and not online.is_deleted_row(np.array([row]))[0]:
            q = np.asarray(self.bundle.vectors[row], np.float32)
        else:
            j = delta.find(post_id)
            if j < 0:
                raise NotFound(f"post {post_id} not found (unknown or deleted)")
            q = delta.vectors[j]
        q = self.model.post_query(q[None])[0]  # cosine of the model's post vectors, cold channel or not
        excl = np.concatenate([tomb, [row] if row >= 0 else EMPTY]).astype(np.int64)
        p = Prepared(k=k, user_id=None, user_known=False, hist=EMPTY, query=q, excl_all=excl,
                     excl_ids=np.array([post_id], np.int64), excl_authors=set(), cutoff_row=0, cutoff_us=NULL_TS, author_cap=None,
                     delta=delta)
        return self.replies.respond(p, self.search.search_one(p)).items()

    # --- writes (callers hold the app's write lock) ------------------------------------------

    def add_post(self, post: NewPost) -> tuple[bool, list[str]]:
        """Encode and add to the delta; (created, modalities). Idempotent on post_id."""
        if self.exists(post.post_id):
            return False, []
        feats, present = self.ingest.features(post)
        self.add_encoded(post, feats, present)
        return True, sorted(m for m, v in present.items() if v.any())

    def add_encoded(self, post: NewPost, feats: dict, present: dict) -> None:
        """Add a post whose features were already checked / encoded (`Ingest.features`)."""
        latent, vector = self.ingest.embed(post.post_id, post.author_id, feats, present)
        self.online.add(post.post_id, post.author_id, now_us(post.created_at), latent, vector, feats, present)

    def delete_post(self, post_id: int) -> None:
        self.online.delete(post_id)

    def add_events(self, events: list) -> int:
        """Validate all, then apply all (nothing half-applied). Returns the number of users touched."""
        return self.online.add_events(events)

    # --- the online log's entries (serving.journal calls these under the app's write lock) -------

    def apply_entries(self, entries: list) -> int:
        """Apply log entries (recsys.online_log.Entry) with seq > the applied one, in seq order;
        how many were applied. Never raises for an entry's content: an entry is applied as it
        was accepted (a post that exists already and a delete of a gone post change nothing)."""
        n = 0
        for e in entries:
            if e.seq <= self.online.applied_seq:
                continue
            if e.kind == "post":
                self._apply_post(records.read_post(e.payload))
            elif e.kind == "delete":
                pid = int(e.payload["post_id"])
                if self.online.exists(pid):
                    self.online.delete(pid)
            elif e.kind == "events":
                self.online.apply_events(records.read_events(e.payload))
            self.online.applied_seq = e.seq
            n += 1
        return n

    def _apply_post(self, r: records.PostRecord) -> None:
        if self.online.exists(r.post_id):
            return
        latent, vector = r.latent, r.vector
        if r.model != getattr(self.model, "fingerprint", None) or latent.shape[1] != self.catalogue.latent_dim:
            try:
                latent, vector = self.ingest.embed(r.post_id, r.author_id, r.features, r.present)
            except Exception as e:  # a post this model cannot encode is left out, loudly
                logger.warning("online log: post %d cannot be encoded by this bundle's model (%s)", r.post_id, e)
                return
        self.online.add(r.post_id, r.author_id, r.created_us, latent, vector, r.features, r.present)
        if r.key is not None:
            self.ids.remember_post(r.post_id, r.key)

    def absorb(self, old: ServingState) -> None:
        """Carry the online state of `old` (the previous bundle) over to this one before a swap."""
        same_model = getattr(old.model, "fingerprint", None) == getattr(self.model, "fingerprint", None)
        od = old.online.delta
        for j in range(od.n):
            pid = int(od.ids[j])
            if self.rows_of(np.array([pid]))[0] >= 0:
                continue  # the new bundle has it
            feats, present = od.features[j]
            author = int(od.authors[j])
            try:
                if same_model and od.latents.shape[1] == self.catalogue.latent_dim:
                    latent, vector = od.latents[j : j + 1], od.vectors[j : j + 1]
                else:
                    latent, vector = self.ingest.embed(pid, author, feats, present)
                self.online.add(pid, author, int(od.created[j]), latent, vector, feats, present)
            except Exception as e:  # a post the new model cannot encode is dropped, loudly
                logger.warning("reload: dropping online post %d (%s)", pid, e)
        self.online.carry_over(old.online)
        self.ids.carry_over(old.ids)
