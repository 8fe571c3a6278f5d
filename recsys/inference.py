"""One inference path: what training's export, offline evaluation, `build-index` and serving all
compute about a user or a post lives here, once.

Shape legend: B users, L history length (= run.max_history), N posts, Z latent, d retrieval dim.

**A user's history** (one semantics everywhere):
- what counts: every row of interactions.parquet (any event type), and every event the API
  acknowledges (`POST /v1/events`) or a request's own `history`;
- order: oldest first by `ts`; rows with the same `ts` (or none, as in imported benchmarks) keep
  their file / arrival order;
- repeats: a post the user engaged with several times appears once, at its most recent position;
- length: the model reads the most recent `run.max_history` posts (`pad_histories`); stores keep
  more (`keep`), so a longer `max_history` in a later run still finds them.
- offline, the history of a split is what the server would hold when that split begins
  (`InteractionData.history_splits`): train for valid; train + valid for test on temporal splits
  (imported benchmarks keep their fixed protocol: train only).

**A user's vector** (the fallback chain, `user_vectors`):
1. the user's ID row (users with train interactions) combined with the content profile of the
   history;
2. no ID row: the history profile (content profile + the ID bag of the history's posts);
3. no history and no ID row: no vector (`has_profile` False): the user is answered from the
   **population prior** (`population_prior`): posts ranked by interaction count over the same
   history window, newest first among equal counts, lower row first after that.

**A post's vector**: `catalogue_vectors` (latents from the feature store in bounded chunks, then
`LoadedRun.post_vectors`: content + propagated ID row + author row).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import polars as pl

NULL_TS = np.iinfo(np.int64).min
CHUNK = 8192

_HISTORY_SCHEMA = {"user_id": pl.Int64, "history": pl.List(pl.Int64), "seen": pl.List(pl.Int64)}


# --- histories ------------------------------------------------------------------------------------

def history_table(interactions: pl.DataFrame, keep: int | None = None) -> pl.DataFrame:
    """interactions (user_id, post_id, ts, ... in file order) -> one row per user, sorted by
    user_id: `history` list[i64] (the semantics above, most-recent-last, at most `keep` posts),
    `seen` list[i64] (every post, unique, sorted)."""
    if len(interactions) == 0:
        return pl.DataFrame(schema=_HISTORY_SCHEMA)
    df = interactions.select("user_id", "post_id", "ts").with_row_index("_i")
    df = df.sort(["user_id", "ts", "_i"], nulls_last=False)
    # repeats: keep the most recent occurrence of each (user, post)
    df = df.filter(pl.int_range(pl.len()).over(["user_id", "post_id"]) == pl.len().over(["user_id", "post_id"]) - 1)
    hist = pl.col("post_id") if keep is None else pl.col("post_id").tail(keep)
    return (
        df.group_by("user_id", maintain_order=True)
        .agg(hist.alias("history"), pl.col("post_id").sort().alias("seen"))
        .sort("user_id")
        .cast(_HISTORY_SCHEMA)
    )


def merge_history(stored: np.ndarray, new: np.ndarray, keep: int) -> np.ndarray:
    """A stored history (most-recent-last, unique) followed by newer post ids -> the same
    semantics: repeats moved to their most recent position, the last `keep` kept. int64."""
    stored, new = np.asarray(stored, np.int64), np.asarray(new, np.int64)
    if not len(new):
        return stored[-keep:] if keep else stored[:0]
    _, last = np.unique(new[::-1], return_index=True)
    new = new[np.sort(len(new) - 1 - last)]  # last occurrence of each, in order
    out = np.concatenate([stored[~np.isin(stored, new)], new])
    return out[-keep:] if keep else out[:0]


def pad_histories(histories: Sequence[np.ndarray], length: int) -> np.ndarray:
    """Lists of ids (or rows), most-recent-last -> int64 (B, L): the last `length` of each,
    right-aligned (last column = most recent), -1 padded."""
    out = np.full((len(histories), length), -1, np.int64)
    for i, h in enumerate(histories):
        h = np.asarray(h, np.int64)[-length:] if length else np.zeros(0, np.int64)
        if len(h):
            out[i, length - len(h):] = h
    return out


def history_rows(ds, data, splits: Sequence[str]) -> list[np.ndarray]:
    """Per user row of `data`: post rows (int64) of the user's history over the interactions of
    `splits` (train, or train + valid), with the semantics above."""
    inter = ds.interactions_with_split().filter(pl.col("split").is_in(list(splits)))
    table = history_table(inter)
    out: list[np.ndarray] = [np.zeros(0, np.int64) for _ in range(data.n_users)]
    if len(table) == 0:
        return out
    users = data.user_index(table["user_id"].to_numpy())
    lens = table["history"].list.len().to_numpy()
    flat = data.post_index(table["history"].explode().to_numpy().astype(np.int64))
    for u, part in zip(users.tolist(), np.split(flat, np.cumsum(lens)[:-1])):
        out[u] = part.astype(np.int64)
    return out


# --- vectors ----------------------------------------------------------------------------------------

def catalogue_vectors(run, features: dict, post_ids: np.ndarray, author_ids: np.ndarray | None,
                      popularity: np.ndarray | None = None, chunk: int = CHUNK) -> tuple[np.ndarray, np.ndarray]:
    """Latents float32 (N, Z) and post vectors float32 (N, d) of `post_ids` int64 (N,) from a
    feature store {modality: recsys.features.ModalityFeatures} (modalities the run does not
    know are ignored; ones it knows but the store lacks count as absent), in bounded chunks.
    popularity int64 (N,): distinct users per post (`post_popularity`) for the popularity blend
    (`recsys.runs.LoadedRun`); None = the run's training counts."""
    usable = [m for m in run.modalities if m in features]
    lat, vec = [], []
    for s in range(0, len(post_ids), chunk):
        ids = np.asarray(post_ids[s:s + chunk], np.int64)
        f, p = {}, {}
        for m in usable:
            f[m], p[m] = features[m].aligned(ids)
        z = np.asarray(run.post_latents(f, p), np.float32)  # (n, Z)
        a = None if author_ids is None else np.asarray(author_ids[s:s + chunk], np.int64)
        lat.append(z)
        pop = None if popularity is None else np.asarray(popularity[s:s + chunk])
        vec.append(np.asarray(run.post_vectors(z, ids, a, pop), np.float32))  # (n, d)
    z_dim = int(run.latent_dim)
    if not lat:
        return np.zeros((0, z_dim), np.float32), np.zeros((0, int(run.dim)), np.float32)
    return np.concatenate(lat), np.concatenate(vec)


def user_vectors(
    run,
    histories: Sequence[np.ndarray],
    user_ids: np.ndarray,
    latents_of: Callable[[np.ndarray], np.ndarray],
    chunk: int = 4096,
) -> tuple[np.ndarray, np.ndarray]:
    """The fallback chain's first two steps for B users.

    histories: post ids per user (int64, most-recent-last, any length: the last
    `run.max_history` are read); user_ids int64 (B,) (-1 = anonymous); latents_of: post ids int64
    (n,) -> float32 (n, Z) (zeros for unknown ids). -> (vectors float32 (B, d), has_profile bool
    (B,)); rows without a profile are zero (the caller answers them from the population prior)."""
    L = int(run.max_history)
    user_ids = np.asarray(user_ids, np.int64)
    vecs, has = [], []
    for s in range(0, len(user_ids), chunk):
        ids = pad_histories(histories[s:s + chunk], L)  # (b, L) post ids, -1 padding
        lat = latents_of(ids.reshape(-1)).reshape(len(ids), L, -1) * (ids >= 0)[..., None]  # (b, L, Z)
        v, h = run.user_vectors(lat, ids, user_ids[s:s + chunk], return_mask=True)
        vecs.append(np.asarray(v, np.float32))
        has.append(np.asarray(h, bool))
    if not vecs:
        return np.zeros((0, int(run.dim)), np.float32), np.zeros(0, bool)
    return np.concatenate(vecs), np.concatenate(has)


def latent_lookup(post_ids: np.ndarray, latents: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """post ids int64 (N,) + latents float32 (N, Z) -> a `latents_of` for `user_vectors`."""
    order = np.argsort(post_ids, kind="stable")
    sorted_ids = np.asarray(post_ids, np.int64)[order]

    def latents_of(ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, np.int64)
        out = np.zeros((len(ids), latents.shape[1]), np.float32)
        if len(sorted_ids):
            pos = np.clip(np.searchsorted(sorted_ids, ids), 0, len(sorted_ids) - 1)
            ok = (sorted_ids[pos] == ids) & (ids >= 0)
            out[ok] = latents[order[pos[ok]]]
        return out

    return latents_of


# --- the population prior ----------------------------------------------------------------------------

def post_popularity(interactions: pl.DataFrame, post_ids: np.ndarray, half_life_s: float | None = None,
                    now_us: int | None = None, pairs: pl.DataFrame | None = None) -> np.ndarray:
    """Distinct users who interacted with each of `post_ids` (int64 (N,)), each weighted
    2^(-age / half_life_s) by the age of their latest interaction with it at `now_us` (int64
    µs; default the latest interaction) where the dataset has a half-life (`recsys.prior`):
    float64 (N,), the counts the population prior ranks by (offline without a half-life they are
    the column sums of the binary history matrix). `pairs`: `recsys.prior.latest_pairs` of
    `interactions`, when the caller has it."""
    from recsys.interactions import rows_of
    from recsys.prior import decay_weights, latest_pairs, now_of

    ids = np.asarray(post_ids, np.int64)
    if half_life_s is None:
        counts = interactions.select("user_id", "post_id").unique().group_by("post_id").len()
        cid, w = counts["post_id"].to_numpy().astype(np.int64), counts["len"].to_numpy().astype(np.float64)
    else:
        pairs = latest_pairs(interactions) if pairs is None else pairs
        now = now_of(interactions) if now_us is None else int(now_us)
        cid = pairs["post_id"].to_numpy().astype(np.int64)
        w = decay_weights(pairs["t"].to_numpy(), now if now is not None else 0, half_life_s)
    if not len(cid):
        return np.zeros(len(ids), np.float64)
    order = np.argsort(cid, kind="stable")
    uniq, start = np.unique(cid[order], return_index=True)
    total = np.add.reduceat(w[order], start)  # (P,) per counted post, sorted by id
    pos = rows_of(uniq, ids, sorted_keys=True)
    return np.where(pos >= 0, total[pos.clip(0)], 0.0)


def popularity_order(popularity: np.ndarray, created_at_us: np.ndarray | None = None) -> np.ndarray:
    """Rows ranked for a user nobody knows: most interactions first, newest first among equal
    counts (unknown creation times last), lower row first after that. int64 (N,)."""
    pop = np.asarray(popularity)
    created = np.full(len(pop), NULL_TS, np.int64) if created_at_us is None else np.asarray(created_at_us, np.int64)
    return np.lexsort((np.arange(len(pop)), -(created.astype(np.float64)), -pop.astype(np.float64))).astype(np.int64)


def population_prior(popularity: np.ndarray, created_at_us: np.ndarray | None = None) -> np.ndarray:
    """float32 (N,) scores whose descending order is `popularity_order` (1 - rank / N, distinct):
    the ranking the server answers a user without a profile with, as offline scores."""
    order = popularity_order(popularity, created_at_us)
    n = len(order)
    out = np.empty(n, np.float32)
    out[order] = 1.0 - np.arange(n, dtype=np.float64) / max(n, 1)
    return out
