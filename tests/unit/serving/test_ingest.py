"""serving.ingest: a new post's features are checked with messages that name what is wrong."""

from __future__ import annotations

import pytest

from serving.schemas import NewPost
from serving.state import BadInput


def test_bad_features_are_rejected(states):
    st = states["exact"]
    with pytest.raises(BadInput, match=r"`features\['vec'\]` must have 16 values, got 3"):
        st.add_post(NewPost(post_id=5, features={"vec": [1.0, 2.0, 3.0]}))
    with pytest.raises(BadInput, match="unknown modality 'text'"):
        st.add_post(NewPost(post_id=5, features={"text": [1.0]}))
    with pytest.raises(BadInput, match="needs `features`"):
        st.add_post(NewPost(post_id=5))
    assert st.delta.n == 0
