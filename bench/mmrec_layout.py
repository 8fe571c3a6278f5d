"""Write a recsys dataset (with its feature store) in MMRec's layout, to try the import path and
the whole job the way a user with MMRec-format data would (`recsys.data.mmrec`).

    .venv/bin/python bench/mmrec_layout.py --data D --out SRC [--min-interactions 5]
    .venv/bin/recsys import SRC --out D2 && .venv/bin/recsys train --data D2 --out R && ...

SRC gets `<name>.inter` (userID, itemID, rating, timestamp, x_label; ids renumbered 0..n-1) and
`<modality>_feat.npy` (rows = itemIDs). The split is per user and chronological, about 8:1:1 as
MMRec's Amazon datasets are cut: a user's last max(1, round(n / 10)) interactions are test, as
many before them valid, the rest train; users with fewer than --min-interactions are left out
(MMRec's 5-core).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="a recsys dataset with a feature store")
    ap.add_argument("--out", type=Path, required=True, help="folder to write (must not exist)")
    ap.add_argument("--min-interactions", type=int, default=5)
    args = ap.parse_args()
    from recsys.dataset import load_dataset
    from recsys.features import load_features

    ds = load_dataset(args.data)
    store = load_features(ds.root)
    args.out.mkdir(parents=True)
    post_ids = ds.posts["post_id"].sort().to_numpy()
    item = {int(p): i for i, p in enumerate(post_ids)}
    df = ds.interactions.sort(["user_id", "ts", "post_id"])
    users = np.unique(df["user_id"].to_numpy())
    df = df.with_columns(
        pl.col("user_id").replace_strict({int(u): i for i, u in enumerate(users)}).alias("userID"),
        pl.col("post_id").replace_strict(item).alias("itemID"),
        pl.col("weight").cast(pl.Float64).alias("rating"),
        pl.col("ts").dt.epoch("s").alias("timestamp"),
        pl.int_range(pl.len()).over("user_id").alias("r"),
        pl.len().over("user_id").alias("n"),
    ).filter(pl.col("n") >= args.min_interactions)
    tail = (pl.col("n") * 0.1).round().cast(pl.Int64).clip(lower_bound=1)  # valid and test rows per user, at least 1 each
    df = df.with_columns(
        pl.when(pl.col("r") < pl.col("n") - 2 * tail).then(0).when(pl.col("r") < pl.col("n") - tail).then(1).otherwise(2).alias("x_label")
    )
    name = args.out.name
    df.select("userID", "itemID", "rating", "timestamp", "x_label").write_csv(args.out / f"{name}.inter", separator="\t")
    for m, feats in store.items():
        rows, _ = feats.aligned(post_ids)  # (N, D), zeros where the post has no such feature
        np.save(args.out / f"{m}_feat.npy", rows)
    counts = df.group_by("x_label").len().sort("x_label")["len"].to_list()
    print(f"wrote {args.out}: {df['userID'].n_unique()} users, {len(post_ids)} items, train / valid / test {counts}, "
          f"modalities {sorted(store)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
