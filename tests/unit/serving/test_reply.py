"""serving.reply: the column-spliced JSON body is the dict rendering, byte for byte."""

from __future__ import annotations

import pytest

from serving.reply import Reply
from serving.schemas import RecommendRequest
from tests.unit.serving.oracle import NOW


@pytest.mark.parametrize("req", [
    dict(user_id=3, k=12, filters={"author_cap": 1}),  # personal: "why" filled
    dict(k=6),  # popular fallback: no history, "why" null
    dict(user_id=2, k=5, filters={"max_age_seconds": 1e-3, "now": NOW}),  # nothing that young: no items
])
def test_reply_json_is_the_dict_rendering(states, req):
    """The column-spliced JSON body is byte for byte the dict path's (pydantic-core to_json)."""
    from pydantic_core import to_json

    st = states["shared"]
    p = st.prepare(RecommendRequest(**req))
    reply = st.recommend_prepared([p])[0]
    assert isinstance(reply, Reply)
    assert reply.to_json("v7") == to_json({**reply.to_dict(), "bundle_version": "v7"})
    assert reply.to_json("v7") is reply.to_json("v7")  # memoised
    assert b'"bundle_version":"v8"' in reply.to_json("v8")
