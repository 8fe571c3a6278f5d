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


def test_reply_json_with_string_ids_holding_commas_and_quotes():
    """String post ids (the caller's keys) may hold commas and quotes: rendered value by value,
    still byte for byte the dict path's."""
    from pydantic_core import to_json

    reply = Reply(["a,b", 'q"1', "c"], [0.5, 0.25, 0.125], ["x,y", None, "c"], [0.9, None, 1.0], None, True,
                  ["text", "id", "image"])
    assert reply.to_json("v1") == to_json({**reply.to_dict(), "bundle_version": "v1"})
    mixed = Reply([7, 8], [1.0, 0.5], [None, 3], [None, 0.5], "popular", False)
    assert mixed.to_json("v1") == to_json({**mixed.to_dict(), "bundle_version": "v1"})
