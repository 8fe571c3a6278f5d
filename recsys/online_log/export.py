"""Served events -> the dataset's interactions, so the next `recsys train` learns from them.

Every event of the log's "events" entries becomes an interaction row (user_id, post_id, ts = the
event's ts or, without one, the time the server logged it, event, weight 1.0). Rows already in
the dataset (same user, post, ts and event) are not added twice, so exporting again after more
traffic adds only the new ones. Events on posts the dataset does not have (posts added live) are
left out and counted. The split is row-indexed, so an existing splits.parquet is removed: run
`recsys split` again.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from recsys import schema
from recsys.dataset import load_dataset, save_dataset
from recsys.online_log import open_log, records


def export_events(log_spec: str, data_dir: Path) -> dict:
    """Append the log's events to `data_dir`'s interactions; counts of what happened."""
    ds = load_dataset(Path(data_dir))
    rows = []
    with open_log(log_spec) as log:
        seq = 0
        while entries := log.read_after(seq, 10_000):
            for e in entries:
                if e.kind == "events":
                    rows += [(u, p, e.written_us if t is None else t, ev) for u, p, ev, t in records.read_events(e.payload)]
            seq = entries[-1].seq
    ev = pl.DataFrame(rows, schema={"user_id": pl.Int64, "post_id": pl.Int64, "ts": pl.Int64, "event": pl.Utf8}, orient="row")
    ev = ev.with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC")), pl.lit(1.0, pl.Float32).alias("weight"))
    known = ev.filter(pl.col("post_id").is_in(ds.posts["post_id"].implode()))
    old = ds.interactions.select(list(schema.INTERACTIONS_SCHEMA))
    new = known.select(list(schema.INTERACTIONS_SCHEMA)).unique(maintain_order=True).join(
        old, on=["user_id", "post_id", "ts", "event"], how="anti", nulls_equal=True)
    out = {"events": len(ev), "added": len(new), "already": len(known) - len(new), "unknown_posts": len(ev) - len(known),
           "split_removed": False}
    if len(new):
        save_dataset(Path(data_dir), ds.posts, pl.concat([old, new]), None, ds.meta)
        split = Path(data_dir) / schema.SPLITS_FILE
        if split.is_file():
            split.unlink()
            out["split_removed"] = True
    return out
