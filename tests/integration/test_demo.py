"""`recsys demo --no-serve` end to end on the tiny synthetic platform (already encoded, so the
encoders are not re-run), twice: a re-run reuses the dataset and replaces run, report and bundle."""

from __future__ import annotations

import json
import shutil

from recsys.cli import main


def test_demo_runs_end_to_end_and_reruns(tiny_encoded, tmp_path, capsys):
    out = tmp_path / "demo"
    shutil.copytree(tiny_encoded, out / "data")
    for attempt in range(2):
        assert main(["demo", "--size", "tiny", "--no-serve", "--out", str(out)]) == 0, f"run {attempt + 1}"
        printed = capsys.readouterr().out
        assert "reusing" in printed and "demo pipeline finished" in printed
        metrics = json.loads((out / "run" / "metrics.json").read_text())
        assert 0.0 <= metrics["test"]["recall@20"] <= 1.0
        report = json.loads((out / "report" / "report.json").read_text())
        assert {m["id"] for m in report["models"]} >= {"baseline:popular", "run:run"}
        assert report["hidden_reference"]["pref_capture@20"] == 1.0  # synthetic ground truth is reported
        assert (out / "index" / "CURRENT").is_file()
    bundles = sorted(p.name for p in (out / "index" / "bundles").iterdir())
    assert len(bundles) == 2 and (out / "index" / "CURRENT").read_text().strip() == bundles[-1]
