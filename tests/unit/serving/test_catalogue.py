"""serving.catalogue: the lookups behind the filters against plain numpy."""

from __future__ import annotations

import numpy as np


def test_lookups_behind_the_filters(states, monkeypatch):
    """first_row_at (two-level search), rows_of_author and excluded_id_rows (memoised) against
    plain numpy."""
    import serving.catalogue as S

    st = states["exact"]
    b = st.bundle
    created = b.created_at_us
    for t in np.concatenate([created[::37] - 1, created[::37], created[::37] + 1, [created[0] - 5, created[-1] + 5]]):
        assert st.catalogue.first_row_at(int(t)) == int(np.searchsorted(created, t, "left"))
    for a in [*np.unique(b.author_ids)[:12].tolist(), 10**9]:
        np.testing.assert_array_equal(np.sort(st.catalogue.rows_of_author(a)), np.flatnonzero(b.author_ids == a))
    ids = [int(b.post_ids[5]), 424242, int(b.post_ids[2]), int(b.post_ids[5])]
    np.testing.assert_array_equal(st.catalogue.excluded_id_rows(ids), [5, 2, 5])  # unknown ids dropped
    np.testing.assert_array_equal(st.catalogue.excluded_id_rows(ids), [5, 2, 5])  # from the memo
    monkeypatch.setattr(S, "ID_ROWS_KEEP", 3)
    np.testing.assert_array_equal(st.catalogue.excluded_id_rows([int(b.post_ids[9])]), [9])
    assert st.catalogue.remembered_ids == 1  # the full memo started over
