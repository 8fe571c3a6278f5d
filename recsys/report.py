"""Write an evaluation report (from `recsys.compare.compare`) to a directory:

    report.json                every figure, dataset name + fingerprint, split, K list, timings
    report.md                  the tables a person reads
    recall_ndcg_at_k.png       Recall@K and NDCG@K per model
    buckets.png                recall by cold/warm relevant posts and by user history length
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recsys.evaluation import HISTORY_BUCKETS
from recsys.io import atomic_path, write_json

PLOT_CURVES = "recall_ndcg_at_k.png"
PLOT_BUCKETS = "buckets.png"


def headline_k(ks: list[int]) -> int:
    return 20 if 20 in ks else max(ks)


def write_report(out: Path, report: dict[str, Any]) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "report.json", report)
    with atomic_path(out / "report.md") as tmp:
        tmp.write_text(render_markdown(report))
    paths = [out / "report.json", out / "report.md"]
    paths += _plots(out, report)
    return paths


def _f(x: float | None, nd: int = 4) -> str:
    return "-" if x is None else f"{x:.{nd}f}"


def render_markdown(r: dict[str, Any]) -> str:
    ds, split, ks, k = r["dataset"], r["split"], r["ks"], headline_k(r["ks"])
    lines = [
        f"# Offline evaluation: {ds['name']} ({split})",
        "",
        f"- Dataset: `{ds['name']}` (fingerprint `{ds['fingerprint']}`), {ds['n_users']:,} users x {ds['n_posts']:,} posts, `{ds['root']}`",
        f"- Figures below are on the **{split}** split ({r['n_users']:,} users with >= 1 {split} item)."
        + (" Trained models were **selected on valid, reported on test**; the `valid R@K` column is the selection figure."
           if split == "test" else " Selection and report both use valid (optimistic for tuned models)."),
        f"- Protocol: {r['protocol']}.",
        f"- Generated {r['created_at']}; timings in seconds on {r['machine']['cpus']} CPU(s), {r['machine'].get('torch_threads', '?')} torch thread(s) ({r['machine']['note']}).",
        "",
        f"## Results ({split})",
        "",
    ]
    head = ["model"] + [f"{m}@{kk}" for kk in ks for m in ("R", "N")]
    head += [f"P@{k}", f"Hit@{k}", f"MRR@{k}", f"Cov@{k}"]
    head += [f"valid R@{k}"] if split == "test" else []
    head += ["fit s", "eval s", "selection"]
    rows = []
    for m in r["models"]:
        x = m["metrics"]
        row = [m["id"]] + [_f(x[f"{mm}@{kk}"]) for kk in ks for mm in ("recall", "ndcg")]
        row += [_f(x[f"precision@{k}"]), _f(x[f"hit@{k}"]), _f(x[f"mrr@{k}"]), _f(x[f"coverage@{k}"], 3)]
        row += [_f(m["valid_metrics"][f"recall@{k}"])] if split == "test" else []
        row += [f"{m['timings']['fit_s']:.1f}", f"{m['timings']['eval_s']:.2f}", m["selection"]]
        rows.append(row)
    lines += _table(head, rows)
    lines += ["", "R = Recall, N = NDCG, P = Precision, Cov = catalogue coverage of the top-K lists. "
              "fit s = training (or run loading) time, eval s = full-ranking evaluation of this split "
              "(the valid figure beside it costs about as much again).", ""]

    # buckets
    lines += [f"## Buckets ({split}, K={k})", ""]
    first = r["models"][0]["buckets"]
    hist_labels = [b[0] for b in HISTORY_BUCKETS if b[0] in first["history"]]
    head = ["model", f"cold R@{k} ({first['items']['cold']['n_users']} users)", f"warm R@{k} ({first['items']['warm']['n_users']} users)"]
    head += [f"history {h} R@{k} ({first['history'][h]['n_users']} users)" for h in hist_labels]
    rows = []
    for m in r["models"]:
        b = m["buckets"]
        rows.append([m["id"], _f(b["items"]["cold"][f"recall@{k}"]), _f(b["items"]["warm"][f"recall@{k}"])]
                    + [_f(b["history"][h][f"recall@{k}"]) for h in hist_labels])
    lines += _table(head, rows)
    lines += ["", "cold = relevant posts with no train interaction; recall_cold@K = cold relevant posts hit / cold relevant "
              "posts, averaged over users that have any (same for warm). history = the user's number of train posts.", ""]

    hidden = [(m["id"], m.get("hidden_preferences")) for m in r["models"] if m.get("hidden_preferences")]
    if hidden:
        hk = next(key for key in hidden[0][1] if key.startswith("topic_affinity@")).split("@")[1]
        ref = r.get("hidden_reference")
        if ref:
            hidden.append(("reference: ranked by the hidden choice weights", ref))
        lines += [f"## Hidden preferences recovered (synthetic ground truth, {split}, K={hk})", ""]
        lines += _table(["model", f"preference capture@{hk}", f"topic affinity@{hk}", f"favourite-author share@{hk}", "users"],
                        [[mid, _f(h.get(f"pref_capture@{hk}")), _f(h[f"topic_affinity@{hk}"]), _f(h[f"fav_author@{hk}"]), str(h["n_users"])]
                         for mid, h in hidden])
        lines += ["", "preference capture = the hidden choice weights (topic preference x favourite author x popularity, as the "
                  "simulator draws interactions) summed over the recommended posts / the same sum over the best possible K "
                  "posts (1 = exactly what the hidden preferences rank highest): the full measure of recovery. "
                  "topic affinity = mean hidden weight of the recommended posts' topics / the user's top topic weight "
                  "(1 = all on the favourite topic); favourite-author share = recommended posts by the user's hidden favourite "
                  "authors. These two are partial views: the reference row (lists ranked by the true choice weights) shows "
                  "what perfect recovery scores on them; a list can exceed it on one by ignoring the others.", ""]

    pub = r.get("published")
    if pub:
        kk = pub["k"]
        lines += [f"## Beside published figures (Recall@{kk} / Precision@{kk} / NDCG@{kk}, test)", ""]
        rows = [(m["metrics"].get(f"recall@{kk}"), m["id"], "ours: selected on valid", m["metrics"].get(f"precision@{kk}"), m["metrics"].get(f"ndcg@{kk}"))
                for m in r["models"] if f"recall@{kk}" in m["metrics"]]
        groups = (("reference", "dataset README: selected on valid"), ("published", "DiffMM Table 1: selected on test, +text"),
                  ("later", "published after DiffMM: selected on valid, +text"))
        for src_key, label in groups:
            rows += [(v[f"recall@{kk}"], name, label, v[f"precision@{kk}"], v[f"ndcg@{kk}"]) for name, v in pub.get(src_key, {}).get("rows", {}).items()]
        rows.sort(key=lambda t: -t[0])
        lines += _table(["model", "source", f"R@{kk}", f"P@{kk}", f"N@{kk}"], [[n, s, _f(rr), _f(p), _f(nd)] for rr, n, s, p, nd in rows])
        lines += ["", f"Sources: {'; '.join(pub[g]['source'] for g, _ in groups if g in pub)}.", ""]

    lines += ["## Plots", "", f"![Recall and NDCG at K]({PLOT_CURVES})", "", f"![Buckets]({PLOT_BUCKETS})", ""]
    return "\n".join(lines)


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    return out + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def _plots(out: Path, r: dict[str, Any]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    ks, split, k = r["ks"], r["split"], headline_k(r["ks"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, metric in zip(axes, ("recall", "ndcg")):
        for m in r["models"]:
            ax.plot(ks, [m["metrics"][f"{metric}@{kk}"] for kk in ks], marker="o", label=m["id"])
        ax.set_xlabel("K")
        ax.set_ylabel(f"{metric.upper() if metric == 'ndcg' else 'Recall'}@K")
        ax.set_xticks(ks)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{r['dataset']['name']} - {split} ({r['n_users']:,} users, full ranking)")
    fig.tight_layout()
    curves = out / PLOT_CURVES
    with atomic_path(curves) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)

    first = r["models"][0]["buckets"]
    groups = [("items", g) for g in ("cold", "warm")] + [("history", h[0]) for h in HISTORY_BUCKETS if h[0] in first["history"]]
    labels = [f"{g}\n({first[kind][g]['n_users']} u)" if kind == "items" else f"hist {g}\n({first[kind][g]['n_users']} u)" for kind, g in groups]
    fig, ax = plt.subplots(figsize=(max(7, 1.3 * len(groups) * max(1, len(r["models"]) / 3)), 4))
    width = 0.8 / len(r["models"])
    x = np.arange(len(groups))
    for i, m in enumerate(r["models"]):
        vals = [m["buckets"][kind][g][f"recall@{k}"] or 0.0 for kind, g in groups]
        ax.bar(x + i * width - 0.4 + width / 2, vals, width, label=m["id"])
    ax.set_xticks(x)
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylabel(f"Recall@{k}")
    ax.set_title(f"{r['dataset']['name']} - {split}: recall@{k} by relevant-post and user-history bucket")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    buckets = out / PLOT_BUCKETS
    with atomic_path(buckets) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return [curves, buckets]
