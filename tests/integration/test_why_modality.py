"""`why_modality` on a trained run's bundle, against the model's own parts: the ID share computed
from each post's known content part and ID row (not from the stored vector), and the content
modality from codes re-encoded from the feature store (not the bundle's stored codes)."""

from __future__ import annotations

import numpy as np
import torch

from recsys.explain import content_modality, modality_codes
from recsys.features import load_features
from serving.schemas import RecommendRequest
from serving.settings import Settings
from serving.state import ServingState


def test_why_modality_matches_the_models_parts(tiny_platform):
    st = ServingState.load(Settings(index_root=tiny_platform["root"]))
    run, b = st.model, st.bundle
    assert run.post_table is not None and st.replies.why_modality.names == list(run.modalities)
    feats = load_features(tiny_platform["data"])
    s = float(run.config["content_scale"])
    checked = {"id": 0, "content": 0}
    for user in b.histories["user_id"].head(15).to_list():
        r = st.recommend([RecommendRequest(user_id=user, k=20)])[0]
        items = r["items"]
        ids = np.array([i["post_id"] for i in items], np.int64)
        rows = st.rows_of(ids)
        tab = run._post_rows(ids)
        p = st.prepare(RecommendRequest(user_id=user, k=20))
        st.profiles([p], [False])
        with torch.no_grad():
            c = torch.nn.functional.normalize(run.model.content_vectors(torch.from_numpy(np.asarray(b.latents[rows]))), dim=-1).numpy()
            idr = (run.post_table[torch.from_numpy(tab).clamp_min(0)] + run.author_rows(b.author_ids[rows])).numpy()
        i_hat = idr / np.maximum(np.linalg.norm(idr, axis=1, keepdims=True), 1e-12)
        lam = np.linalg.norm(s * c + i_hat, axis=1)
        q = p.query[: c.shape[1]]  # the model's part (a popularity-blend coordinate after it)
        t_c, t_i = s * (c @ q) / lam, (i_hat @ q) / lam
        share = np.abs(t_i) / (np.abs(t_c) + np.abs(t_i))
        for j, it in enumerate(items):
            if tab[j] < 0 or abs(share[j] - 0.5) < 0.02:
                continue  # a cold post borrows ID rows; a near tie could flip on rounding
            if share[j] > 0.5:
                assert it["why_modality"] == "id", (it, share[j])
                checked["id"] += 1
                continue
            f, pr = {}, {}
            for m in run.modalities:
                f[m], pr[m] = feats[m].aligned(np.array([it["post_id"], it["why"]], np.int64))
            codes = modality_codes(run, f, pr).astype(np.float32)  # (2, M, Z) re-encoded
            want = content_modality(codes[:1], codes[1:], list(run.modalities))[0]
            assert it["why_modality"] == want, (it, want)
            checked["content"] += 1
    assert checked["id"] > 10 and checked["content"] > 10, checked
