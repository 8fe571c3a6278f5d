"""`tiny_platform`: the tiny synthetic platform encoded, split, a tiny run trained on it and a
bundle built from that run, once per session, for tests that only read them (the web page, the
gallery). Tests that write to a bundle build their own."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import copy_dataset


@pytest.fixture(scope="session")
def tiny_platform(tiny_encoded: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    from recsys.cli import main as recsys_main
    from recsys.dataset import load_dataset
    from recsys.split import split_dataset
    from training.train import TrainConfig, train

    tmp = tmp_path_factory.mktemp("platform")
    data = copy_dataset(tiny_encoded, tmp / "data")
    split_dataset(data)
    run = train(TrainConfig.preset("tiny", data=str(data), out=str(tmp / "run")))
    root = tmp / "index"
    assert recsys_main(["build-index", "--run", str(run), "--data", str(data), "--out", str(root)]) == 0
    return {"data": data, "run": Path(run), "root": root, "ds": load_dataset(data)}
