"""Warm a freshly loaded ServingState before it takes traffic (hot swap without a stall).

A new state starts cold: an empty profile cache (every user's first request runs the user
tower), a model whose first calls allocate, and FAISS / numpy pages touched for the first time.
`warm` runs the ordinary batched recommendation path for the users the server answered most
recently (then for stored users, when there are too few), so the swap hands requests a state that
has already served them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from serving.schemas import RecommendRequest

logger = logging.getLogger(__name__)


def warm(state, recent_users: Iterable[int], n_users: int, k: int, batch: int = 64) -> dict:
    """Recommendations (k each, batches of `batch`) for up to `n_users` users, most recent first.
    Returns {"users", "seconds"}. Errors are logged, never raised: warming is best effort."""
    t0 = time.perf_counter()
    users = list(dict.fromkeys(reversed(list(recent_users))))[:n_users]
    if len(users) < n_users:
        stored = state.bundle.histories["user_id"].head(n_users).to_list()
        users += [u for u in stored if u not in set(users)][: n_users - len(users)]
    try:
        for s in range(0, len(users), batch):
            state.recommend([RecommendRequest(user_id=u, k=k) for u in users[s : s + batch]], batched_call=True)
        state.recommend([RecommendRequest(k=k)], batched_call=True)  # the popular fallback path
    except Exception as e:  # a user the new bundle cannot serve must not block the swap
        logger.warning("warm-up of bundle %s stopped early: %s", state.version, e)
    out = {"users": len(users), "seconds": round(time.perf_counter() - t0, 4)}
    logger.info("warmed bundle %s: %d users in %.3f s", state.version, out["users"], out["seconds"])
    return out
