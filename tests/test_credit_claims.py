"""Credit-chapter verdicts: computed by stated rules from rows, pending while their part of a grid is missing."""

from __future__ import annotations

import pandas as pd

from potlib.claims import credit, credit_text


def _rows(gammas: dict[tuple[float, int, str], float]) -> pd.DataFrame:
    return pd.DataFrame([{"alpha": a, "n_layers": L, "method": m, "seed": 42, "status": "ok", "gamma": g,
                          "rho": g, "test_acc": 0.5} for (a, L, m), g in gammas.items()])


def test_cb_beats_at_alpha1_needs_every_alpha1_row_and_follows_the_means():
    full = {(1.0, L, m): g for L in (2, 4) for m, g in (("CB", 0.5), ("SB", 0.3), ("DFA", 0.1))}
    grid = _rows(full)[["alpha", "n_layers", "method", "seed"]]
    partial = _rows({k: v for k, v in full.items() if k[1] == 2})
    assert credit.cb_beats_at_alpha1(partial, grid).verdict == "pending"
    assert credit.cb_beats_at_alpha1(_rows(full), grid).verdict == "reproduced"
    worse = {**full, (1.0, 4, "CB"): 0.2, (1.0, 2, "CB"): 0.2}
    assert credit.cb_beats_at_alpha1(_rows(worse), grid).verdict == "differs"


def test_cb_grows_with_nonlinearity_reads_the_cb_over_sb_ratio():
    rising = {(a, 4, m): (0.2 + 0.4 * a if m == "CB" else 0.4) for a in (0.0, 0.5, 1.0) for m in ("CB", "SB")}
    assert credit.cb_grows_with_nonlinearity(_rows(rising)).verdict == "reproduced"
    falling = {(a, 4, m): (0.6 - 0.4 * a if m == "CB" else 0.4) for a in (0.0, 0.5, 1.0) for m in ("CB", "SB")}
    assert credit.cb_grows_with_nonlinearity(_rows(falling)).verdict == "differs"


def test_proj_claim_is_not_testable_without_credit_to_destroy():
    rows = pd.DataFrame([{"s_type": s, "tgw": 1.0, "wr": 0.2, "status": "ok", "gamma": g, "rho": g, "test_acc": 0.5}
                         for s, g in (("eT", 0.05), ("eT+proj", 0.0), ("deltaL", 0.04), ("deltaL+proj", 0.0))])
    assert credit.proj_destroys(rows).verdict == "not reproducible here"
    rows["gamma"] = [0.45, 0.01, 0.56, 0.02]
    assert credit.proj_destroys(rows).verdict == "reproduced"


def test_unfinished_grids_give_pending_verdicts_not_errors():
    empty = pd.DataFrame(columns=["alpha", "n_layers", "method", "seed", "status", "s_type", "tgw", "wr"])
    assert {c.verdict for c in credit.ladder(empty) + credit.ablations(empty)} == {"pending"}
    assert credit.no_goldilocks(empty).verdict == "pending"


def test_ablation_verdicts_wait_for_the_whole_grid():
    rows = pd.DataFrame([{"s_type": s, "tgw": 1.0, "wr": 0.2, "seed": 42, "status": "ok", "gamma": g, "rho": g,
                          "test_acc": 0.5} for s, g in (("eT", 0.45), ("deltaL", 0.56))])
    grid = pd.concat([rows, rows.assign(seed=123)])[["s_type", "tgw", "wr", "seed"]]
    assert {c.verdict for c in credit.ablations(rows, grid)} == {"pending"}
    assert credit.ablations(rows)[0].verdict == "trend reproduced"  # no grid: the caller vouches for the rows


def test_cifar_scan_verdict_and_text_follow_the_rows():
    rows = _rows({(0.0, L, m): 0.05 for L in (2, 12) for m in ("BP", "DFA", "SB", "CB")})
    rows["test_acc"] = [0.5, 0.3, 0.31, 0.32, 0.4, 0.3, 0.25, 0.2]
    grid = rows[["alpha", "n_layers", "method", "seed"]]
    published = pd.DataFrame({"L": [2, 12], "method": ["CB", "CB"], "acc": [0.311, 0.239], "gamma": [0.2, 0.03],
                              "rho": [0.03, 0.001]})
    assert credit.no_goldilocks(rows, grid).verdict == "reproduced"  # CB's ρ 0.05 < 0.1 at every depth
    text = credit_text.cifar_text(rows, published)
    assert "CB 0.320 → 0.200 (memo 0.311 → 0.239)" in text and "CB +0.050;" not in text and "CB +0.050." in text
    useful = rows.assign(rho=[1.0, 0.01, 0.2, 0.3, 1.0, 0.01, 0.2, 0.3])
    assert credit.no_goldilocks(useful, grid).verdict == "differs"  # L = 2: ρ 0.3 and accuracy 0.32 ≥ DFA's 0.3
    table = credit.cifar_table(useful, published)
    assert list(table.columns) == ["L", "rule", "accuracy: ours (memo)", "Γ: ours (memo)", "ρ: ours (memo)"]
    assert table.set_index(["L", "rule"]).loc[(12, "CB"), "accuracy: ours (memo)"] == "0.200 (0.239)"


def test_no_goldilocks_counts_accuracy_within_the_binomial_noise():
    def scan(cb_acc: float, cb_rho: float) -> pd.DataFrame:
        return pd.DataFrame([{"n_layers": 4, "method": m, "seed": 42, "status": "ok", "n_test": 0, "rho": rho,
                              "test_acc": acc} for m, rho, acc in (("CB", cb_rho, cb_acc), ("DFA", 0.01, 0.40))])

    assert credit.no_goldilocks(scan(0.395, 0.3)).verdict == "differs"  # 0.005 behind: within ±0.014 on 10k images
    assert credit.no_goldilocks(scan(0.36, 0.3)).verdict == "reproduced"  # behind beyond the noise
    assert credit.no_goldilocks(scan(0.45, 0.05)).verdict == "reproduced"  # ahead, but its credit is not useful


def test_overfitting_text_reads_the_losses_from_the_rows():
    rows = pd.DataFrame([{"alpha": 1.0, "n_layers": L, "method": m, "seed": 42, "status": "ok", "train_loss": tr,
                          "test_loss": te, "test_acc": 0.5}
                         for L in (2, 4) for m, tr, te in (("BP", 0.01, 2.0), ("DFA", 0.9, 1.0))])
    text = credit_text.overfitting_text(rows)
    assert "training cross-entropy 0.010)" in text and "test cross-entropy 2.00)" in text and "DFA 0.90 and 1.00" in text
    assert credit_text.overfitting_text(rows[rows["method"] == "DFA"]) == ""


def test_cifar_memo_gap_text_reads_the_committed_scan():
    from potlib import claims
    from potlib.results import default_root
    from potlib.sweep import ensure_rows

    rows = ensure_rows("credit_cifar", "cpu")
    published = claims.load_published("credit_bridge_phase2_cifar")
    text = credit_text.cifar_memo_gap_text(rows, published, claims.load_published("credit_bridge_context"), default_root("cpu"))
    pub = published.set_index(["L", "method"])
    mine = rows.set_index(["n_layers", "method"])
    ratios = [mine.loc[(L, "CB"), "gamma"] / pub.loc[(L, "CB"), "gamma"] for L in (2, 4, 6, 8, 12)]
    assert f"ours is {min(ratios):.1f}-{max(ratios):.1f} times the memo's" in text
    assert "memo's 100-epoch 0.592" in text  # from credit_bridge_context.csv: 59.2 +/- 0.4
    assert credit_text.cifar_memo_gap_text(rows[rows["method"] != "CB"], published, pd.DataFrame(
        columns=["setting", "method", "metric", "value"]), default_root("cpu")) == ""


def test_vector_field_text_names_the_best_other_rule_and_a_collapse():
    ladder = pd.DataFrame([{"alpha": 1.0, "n_layers": 4, "epochs": 20, "method": m, "status": "ok", "gamma": g,
                            "rho": g, "test_acc": a} for m, g, a in (("DFA", 0.3, 0.58), ("SB", 0.5, 0.57), ("CB", 0.4, 0.56))])
    vf = pd.DataFrame([{"alpha": 1.0, "n_layers": 4, "epochs": 20, "method": "VF", "status": "ok", "ema": e, "gamma": g,
                        "rho": g, "test_acc": a} for e, g, a in ((0.9, 0.75, 0.57), (0.995, -0.01, 0.12))])
    text = credit_text.vector_field_text(vf, ladder)
    assert "momentum 0.9, VF's Γ 0.750 is above the best other local rule's (SB 0.500)" in text
    assert "accuracy 0.570 is 0.010 below the best (DFA 0.580)" in text
    assert "momentum 0.995, VF's credit collapses (Γ -0.010) and the network ends at accuracy 0.120" in text


def test_vf_collapse_text_reads_the_committed_runs():
    from potlib.results import default_root
    from potlib.sweep import ensure_rows

    memo, vf = ensure_rows("credit_memo_budget", "cpu"), ensure_rows("credit_vector_field", "cpu")
    long_vf = memo[(memo["method"] == "VF") & (memo["status"] == "ok")]
    table, curves = credit_text.takeover(long_vf, default_root("cpu"))
    assert len(table) == len(long_vf) and set(curves["epoch"]) == set(range(1, int(long_vf["epochs"].iloc[0]) + 1))
    assert (table["peak_at"] <= table["warmup"]).all()
    assert all(c > w for c, w in zip(table["collapse"].dropna(), table["warmup"]))  # a collapse comes after the warmup
    text = credit_text.vf_collapse_text(table, long_vf, vf[vf["status"] == "ok"], long_vf.iloc[:0], 0.117,
                                        default_root("cpu"))
    assert f"peaks inside the warmup ({table['peak_gamma'].min():.2f}–{table['peak_gamma'].max():.2f}" in text
    assert f"{len(table['collapse'].dropna())} of {len(table)} runs" in text or "no run falls below" in text
    assert "With the faster target momentum 0.9, none of 6 runs falls below" in text and "credit bridge ends" not in text
