"""Verdicts and generated text of the credit-assignment chapter (seed 003), from credit_* rows."""

from __future__ import annotations

import pandas as pd

from potlib.experiments.credit_collapse import BASELINE
from potlib.results import ResultStore


def collapse_text(rows: pd.DataFrame, memo: pd.Series, root) -> str:
    """A paragraph, generated from the credit_collapse rows: does Γ fall under RMS-normalised credit,
    which single knob keeps it highest, and how the state norm behaves with it."""
    store = ResultStore(root)
    cb = rows[(rows["method"] == "CB") & (rows["status"] == "ok")]
    if cb.empty or BASELINE not in set(cb["setting"]):
        return "The RMS-normalised baseline has no row at this profile."
    d = cb[cb["setting"] == BASELINE].iloc[0]
    curve = store.artifacts("credit_collapse", d["cfg_id"])["epoch_gamma"]
    norms = store.artifacts("credit_collapse", d["cfg_id"])["epoch_state_norm"][:, -1]
    peak, peak_at = float(curve.max()), int(curve.argmax()) + 1
    best = cb.sort_values("gamma", ascending=False).iloc[0]
    refs = rows[rows["method"] != "CB"].set_index("setting")
    falls = float(curve[-1]) < 0.8 * peak
    parts = [
        f"With credit divided by its RMS (SPEC 3.3), Γ peaks at {peak:.3f} (epoch {peak_at}) and ends at {curve[-1]:.3f} "
        f"after {len(curve)} epochs ({'it falls' if falls else 'it does not fall'} as training goes on), with test "
        f"accuracy {d['test_acc']:.3f} and ‖h_L‖ going from {norms[0]:.3g} to {norms[-1]:.3g}; the memo reports "
        f"Γ {memo['gamma']:.3f} and accuracy {memo['acc']:.3f} at 80 epochs.",
        f"Of the single changes, '{best['setting']}' ends with the highest Γ, {best['gamma']:.3f} "
        f"(accuracy {best['test_acc']:.3f}, ‖h_L‖ {best['state_norm_last']:.3g}).",
    ]
    dist = ((cb["gamma"] - memo["gamma"]) ** 2 + (cb["rho"] - memo["rho"]) ** 2 + (cb["test_acc"] - memo["acc"]) ** 2) ** 0.5
    near = cb.loc[dist.idxmin()]
    parts.append(
        f"The setting whose Γ, ρ and accuracy lie closest to the memo's ({memo['gamma']:.3f}, {memo['rho']:.3f}, "
        f"{memo['acc']:.3f}) is '{near['setting']}' ({near['gamma']:.3f}, {near['rho']:.3f}, {near['test_acc']:.3f}): "
        "of the readings tried, the one most consistent with the memo's numbers (one seed, a quarter of its epochs).")
    if {"BP", "DFA"} <= set(refs.index):
        parts.append(f"At the same budget BP reaches accuracy {refs.loc['BP', 'test_acc']:.3f} and DFA "
                     f"{refs.loc['DFA', 'test_acc']:.3f} (Γ {refs.loc['DFA', 'gamma']:.3f}).")
    return " ".join(parts)
