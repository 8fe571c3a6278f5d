"""serving.profiles: a user's vector is cached until the user's next event."""

from __future__ import annotations

import numpy as np

from serving.schemas import Event, RecommendRequest
from serving.state import ServingState
from tests.unit.serving.conftest import settings_for


def test_cache_serves_until_the_next_event(ivf_bundle):
    st = ServingState.load(settings_for(ivf_bundle))
    prof = st.user_profiles
    p = st.prepare(RecommendRequest(user_id=4, k=1))
    assert prof.cached(4) is None and p.profile is not None
    st.profiles([p])
    hit = prof.cached(4)
    assert hit is p.profile and hit.query is not None
    q2 = st.prepare(RecommendRequest(user_id=4, k=1))
    assert q2.profile is hit  # no model call: the cached entry
    st.add_events([Event(user_id=4, post_id=int(st.bundle.post_ids[0]))])
    assert prof.cached(4) is None  # the event made it stale
    p3 = st.prepare(RecommendRequest(user_id=4, k=1))
    st.profiles([p3])
    assert not np.allclose(p3.query, hit.query)  # the new history moved the vector
