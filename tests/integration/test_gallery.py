"""`recsys gallery` on the tiny platform: the page holds the sampled users' history and both
top-k lists, and the hits it marks are the posts each user interacted with in the split and had
not seen before (computed here from the parquet files)."""

from __future__ import annotations

import re

import polars as pl

from recsys.cli import main as recsys_main


def test_gallery_marks_the_split_interactions_as_hits(tiny_platform, tmp_path, capsys):
    from recsys.gallery import gallery_lists

    data, run = tiny_platform["data"], tiny_platform["run"]
    out = tmp_path / "g" / "gallery.html"
    assert recsys_main(["gallery", "--data", str(data), "--run", str(run), "--baseline", "popular",
                        "--users", "4", "--k", "10", "--out", str(out)]) == 0
    assert "gallery: " in capsys.readouterr().out
    page = out.read_text()
    lists = gallery_lists(data, run, "popular", "test", 4, 10)  # seeded: the same sample
    inter = pl.read_parquet(data / "interactions.parquet").with_row_index("row")
    splits = pl.read_parquet(data / "splits.parquet")
    inter = inter.join(splits, on="row")
    assert len(lists["users"]) == 4 and lists["models"] == ["run:run", "baseline:popular"]
    for u in lists["users"]:
        mine = inter.filter(pl.col("user_id") == u["user_id"])
        before = set(mine.filter(pl.col("split") != "test")["post_id"].to_list())
        want = set(mine.filter(pl.col("split") == "test")["post_id"].to_list()) - before
        assert set(u["hits"]) == want and want
        assert set(u["history"]) <= before and u["history"]
        for m in lists["models"]:
            assert len(u["lists"][m]) == 10 and not set(u["lists"][m]) & before  # seen posts masked
        assert f"<h2>user {u['user_id']}</h2>" in page
    n_hits = sum(len(set(u["lists"][m]) & set(u["hits"])) for u in lists["users"] for m in lists["models"])
    assert page.count('class="tile hit"') == n_hits
    assert len(re.findall(r'<img src="data:image/jpeg;base64,', page)) > 20  # embedded thumbnails: one file
