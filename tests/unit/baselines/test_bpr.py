from recsys.baselines import get_baseline
from recsys.evaluation import evaluate


def test_bpr_learns_and_keeps_the_valid_best_epoch(world):
    data, _ = world
    scorer = get_baseline("bpr")(data, dim=16, lr=0.05, reg=1e-3, epochs=40, patience=5)
    info = scorer.info
    assert info["selected_on"] == "valid"
    assert info["best_valid_recall@20"] == max(h["valid_recall@20"] for h in info["history"])
    assert info["history"][-1]["loss"] < info["history"][0]["loss"]
    # the returned scorer is the selected checkpoint: re-evaluating gives the recorded figure
    assert evaluate(scorer, data, "valid", ks=(20,))["metrics"]["recall@20"] == info["best_valid_recall@20"]
    bpr = evaluate(scorer, data, "test", ks=(10,))["metrics"]["recall@10"]
    pop = evaluate(get_baseline("popular")(data), data, "test", ks=(10,))["metrics"]["recall@10"]
    assert bpr > pop + 0.05
