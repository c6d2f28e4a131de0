"""Generated text of the HRM page, built from the rows at render time (Wang et al. 2025, arXiv 2506.21734).

Every sentence that states an outcome is written here from the hrm_* rows, with its numbers formatted from
the data and its wording chosen by a condition on the data, so that it stays true when the rows change.
Two accuracies count as different only beyond the binomial noise of their difference, as the verdicts in
``potlib.claims.hrm`` do; each point is a single run, so that noise is the test set's sampling noise only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from potlib.claims.core import finite, noise, pct, points
from potlib.claims.hrm import (ACT_SEGMENTS, act_segments_over, act_table, compare, depth_width_axes, equal_size_twin, level_accuracy,
                               matched_pairs, n_test_puzzles, ok_rows, paper_crossover, pick)
from potlib.hrm_train import layers_computed

UNSOLVED = 0.05  # a ladder rung where no model's exact accuracy exceeds this is "unsolved" (1 puzzle in 20)
LABEL = {"transformer": "Transformer", "recurrent_transformer": "looped 2-block stack", "hrm": "HRM"}


def _versus(gap: float, err: float, ahead: str = "ahead of", behind: str = "behind", level: str = "level with") -> str:
    """The word for a difference ``gap`` with noise ``err``: ahead, behind, or level (within the noise)."""
    return ahead if gap > err else behind if -gap > err else level


def unsolved_rungs(ok: pd.DataFrame, by: list[str]) -> str:
    """A sentence naming the ladder rungs where no row solves more than one test puzzle in twenty ('' if none)."""
    best = level_accuracy(ok, by).groupby("level", observed=True)["accuracy"].max()
    if not len(best) or not (best <= UNSOLVED).any():
        return ""
    rest = (f"so the comparison rests on {', '.join(map(str, best[best > UNSOLVED].index))}" if (best > UNSOLVED).any()
            else "so no rung separates the models")
    return (f"No model solves more than one test puzzle in twenty on the rungs "
            f"{', '.join(map(str, best[best <= UNSOLVED].index))}, {rest}.")


def depth_width_text(rows: pd.DataFrame, gpu_grid: pd.DataFrame) -> str:
    """'What the rows show' for depth vs width: the deepest and the widest stack, the equal-size pair where the grid
    has one, the ladder rungs nobody solves, and what would decide the claim (convergence, the ``gpu`` grid)."""
    ok = ok_rows(rows)
    axes = depth_width_axes(rows)
    deep, widest = ((None, None) if axes is None else
                    (pick(ok, n_layers=axes[2], hidden_size=axes[1]), pick(ok, n_layers=axes[0], hidden_size=axes[3])))
    if deep is None or widest is None:
        return ""
    base_d, base_w = axes[0], axes[1]
    column = ok[ok["hidden_size"] == base_w].sort_values("n_layers")
    wider = ok[ok["hidden_size"] > base_w]
    gap, err = compare(widest, deep)
    lead = _versus(gap, err, ahead="width gains more than depth", behind="depth gains more than width",
                   level="depth and width end within the noise of each other")
    out = [f"Grown from the shared point, {lead} here: the widest stack ({base_d} × {int(widest['hidden_size'])}) "
           f"reaches {pct(widest['exact_accuracy'])}, the deepest ({int(deep['n_layers'])} × {int(base_w)}) "
           f"{pct(deep['exact_accuracy'])} (difference {points(gap)}, noise ±{points(err, False)})."]
    if "n_params" in ok.columns:
        if widest["n_params"] > 1.1 * deep["n_params"]:
            out.append(f"The widest is also the larger model ({widest['n_params'] / 1e6:.2f}M parameters against "
                       f"{deep['n_params'] / 1e6:.2f}M).")
        twin = equal_size_twin(ok, deep, base_d, int(base_w))
        if twin is not None:
            eg, en = compare(deep, twin)
            verdict = ("neither axis beats the other size for size" if abs(eg) <= en else
                       "size for size, depth wins" if eg > 0 else "size for size, width wins")
            out.append(f"At equal size ({deep['n_params'] / 1e6:.2f}M and {twin['n_params'] / 1e6:.2f}M) the "
                       f"{int(deep['n_layers'])}-layer stack and the {base_d}-layer stack at $d = {int(twin['hidden_size'])}$ "
                       f"reach {pct(deep['exact_accuracy'])} and {pct(twin['exact_accuracy'])} ({points(eg)}, noise "
                       f"±{points(en, False)}): "
                       f"{verdict} at this budget.")
    drops = []  # a larger model of either axis below its smaller neighbour: run-to-run variation shows there
    for axis in (column, pd.concat([column[column["n_layers"] == base_d], wider]).sort_values("hidden_size")):
        for (_, a), (_, b) in zip(axis.iterrows(), axis.iloc[1:].iterrows()):
            if b["exact_accuracy"] < a["exact_accuracy"]:
                drops.append((a["exact_accuracy"] - b["exact_accuracy"], a, b))
    if drops:
        size, a, b = max(drops, key=lambda t: t[0])
        out.append(f"Each point is a single run, and the ± is the test set's sampling noise only: the larger of two "
                   f"neighbouring models scores lower in {len(drops)} place{'s' if len(drops) > 1 else ''} (at most "
                   f"{points(size, False)}: {int(b['n_layers'])} × {int(b['hidden_size'])} {pct(b['exact_accuracy'])} against "
                   f"{int(a['n_layers'])} × {int(a['hidden_size'])} {pct(a['exact_accuracy'])}), so differences from run "
                   "to run are likely larger than that noise.")
    rungs = unsolved_rungs(ok, ["n_layers", "hidden_size"])
    if rungs:
        out.append(rungs)
    if len(column) > 1 and "final_train_loss" in ok.columns:
        mid = column.iloc[-2]
        d_loss = float(deep["final_train_loss"] - mid["final_train_loss"])
        fit = ("is level with" if abs(d_loss) < 0.02 * float(mid["final_train_loss"]) else
               "is below" if d_loss < 0 else "is above")
        out.append(f"What would decide it: models trained to convergence at equal size (after "
                   f"{int(deep['train_steps']):,} steps the {int(deep['n_layers'])}-layer stack's training loss, "
                   f"{deep['final_train_loss']:.3f}, {fit} the {int(mid['n_layers'])}-layer stack's, "
                   f"{mid['final_train_loss']:.3f}), and depths nearer the paper's 8-256 layers.")
    if len(gpu_grid):
        gd = gpu_grid[gpu_grid["hidden_size"] == gpu_grid["hidden_size"].min()]
        out.append(f"The `gpu` grid trains {int(gd['n_layers'].min())}-{int(gd['n_layers'].max())} layers at $d = "
                   f"{int(gd['hidden_size'].min())}$ and widths up to {int(gpu_grid['hidden_size'].max())} for "
                   f"{int(gpu_grid['train_steps'].max()):,} steps of batch {int(gpu_grid['batch_size'].max())}.")
    return " ".join(out)


def _params(row: pd.Series, template: str = "{}") -> str:
    """``template`` filled with the row's parameter count in millions ('' when the row has none)."""
    has = "n_params" in row.index and finite(row["n_params"])
    return template.format(f"{row['n_params'] / 1e6:.2f}M") if has else ""


def layers_computed_text(rows: pd.DataFrame, gpu_grid: pd.DataFrame | None = None) -> str:
    """'What the rows show' for Fig. 2 (right): the looped stack against the Transformer at each matched number of
    layers computed, HRM's accuracy against the best of each family (with parameters and layers computed), the
    rungs nobody solves, and what the ``gpu`` grid (its configs, if given) would add. '' while the grid has no
    finished run."""
    ok = ok_rows(rows)
    if not len(ok):
        return ""
    out = []
    pairs = [(n, r, t, *compare(r, t)) for n, t, r in matched_pairs(ok)]
    if pairs:
        ahead = [n for n, _, _, g, e in pairs if g > e]
        behind = [n for n, _, _, g, e in pairs if -g > e]
        level = [n for n, _, _, _, _ in pairs if n not in ahead and n not in behind]
        counts = lambda ns: ", ".join(map(str, ns))  # noqa: E731
        if len(ahead) == len(pairs) or len(behind) == len(pairs):
            summary = (f"the looped 2-block stack is {'ahead of' if ahead else 'behind'} the Transformer beyond the "
                       "noise at every count")
        elif not ahead and not behind:
            summary = "neither the looped 2-block stack nor the Transformer is ahead beyond the noise at any count"
        else:
            clauses = ([f"ahead of the Transformer at {counts(ahead)}"] if ahead else []) + (
                [f"behind {'it' if ahead else 'the Transformer'} at {counts(behind)}"] if behind else []) + (
                [f"level at {counts(level)}"] if level else [])
            summary = "the looped 2-block stack is " + (", ".join(clauses[:-1]) + " and " + clauses[-1])
        listing = "; ".join(f"at {n}, {pct(r['exact_accuracy'])} vs {pct(t['exact_accuracy'])} (±{points(e, False)})"
                            for n, r, t, _, e in pairs)
        out.append(f"At equal layers computed, {summary}. Looped against deep by layers computed, with the noise of each "
                   f"difference: {listing}.")
        crossover, paper = paper_crossover()
        if pairs[-1][0] < crossover:
            last = paper.index[paper.index < crossover].max()
            at = pairs[-1][0] if pairs[-1][0] in paper.index else last
            out.append(f"In the paper the looped model is behind up to {last:g} layers computed ({paper.loc[at, 'looped']:g}% "
                       f"vs {paper.loc[at, 'transformer']:g}% at {at:g}) and ahead only from {crossover}, so our grid, "
                       f"which ends at {pairs[-1][0]}, lies where the paper's own looped model is not yet ahead.")
        if _params(pairs[0][1]):
            t_params = [t["n_params"] for _, _, t, _, _ in pairs]
            out.append(f"The looped stack reuses {_params(pairs[0][1])} parameters at every count; the Transformers "
                       f"hold {min(t_params) / 1e6:.2f}M to {max(t_params) / 1e6:.2f}M.")
    h = ok[ok["model"] == "hrm"].sort_values("layers_computed")
    best = {m: g.sort_values("exact_accuracy").iloc[-1] for m, g in ok.groupby("model") if m != "hrm"}
    if len(h):
        runs = "; ".join(f"{pct(r['exact_accuracy'])} with {int(r['layers_computed'])} layers computed "
                         f"(M = {int(r['halt_max_steps'])})" for _, r in h.iterrows())
        out.append(f"HRM{_params(h.iloc[0], ' ({} parameters)')} reaches {runs}.")
        top = h.sort_values("exact_accuracy").iloc[-1]
        if best:
            versus = []
            for m, b in best.items():
                gap, err = compare(top, b)
                versus.append(f"{_versus(gap, err)} the best {LABEL[m]} ({pct(b['exact_accuracy'])} at "
                              f"{int(b['layers_computed'])} layers computed; {points(gap)}, noise ±{points(err, False)})")
            out.append(f"Its best run is {' and '.join(versus)}.")
            most = int(ok.loc[ok["model"] != "hrm", "layers_computed"].max())
            fewest = int(h["layers_computed"].min())
            if fewest > most:
                out.append(f"Every HRM run computes more layers than any other model here ({fewest} "
                           f"or more against at most {most}), so this compares the families, not equal computation.")
    rungs = unsolved_rungs(ok, ["model", "layers_computed"])
    if rungs:
        out.append(rungs)
    out.append("Each point is a single run and the ± is the test set's sampling noise only; differences from run to "
               "run are likely larger.")
    if gpu_grid is not None and len(gpu_grid):
        out.append(_gpu_layers(gpu_grid))
    return " ".join(out)


def _gpu_layers(grid: pd.DataFrame) -> str:
    """What the ``gpu`` grid of Fig. 2 (right) trains, in layers computed per family."""
    spans = {}
    for cfg in grid.itertuples():
        spans.setdefault(cfg.model, []).append(layers_computed(cfg))
    span = lambda m: f"{min(spans[m])}-{max(spans[m])}"  # noqa: E731
    return (f"The `gpu` grid goes further: Transformers of {span('transformer')} layers, a "
            f"{int(grid.loc[grid['model'] == 'recurrent_transformer', 'n_layers'].iloc[0])}-block stack looped to "
            f"{span('recurrent_transformer')} layers computed and HRM at {span('hrm')} layers computed, at $d = "
            f"{int(grid['hidden_size'].max())}$ for {int(grid['train_steps'].max()):,} steps of batch "
            f"{int(grid['batch_size'].max())} (the paper's looped model is ahead of the Transformer from "
            f"{paper_crossover()[0]} layers computed).") if {"transformer", "recurrent_transformer", "hrm"} <= set(spans) else ""


def act_rule_text(tab: pd.DataFrame) -> str:
    """Where ACT's segments per puzzle in training (``act_table``) meet the ACT claim's rule of at most
    ``ACT_SEGMENTS`` x M_max, in words; '' without ACT rows."""
    t = tab.dropna(subset=["act_train_steps"]) if len(tab) else tab
    if not len(t):
        return ""
    share = t["act_train_steps"] / t["M_max"]
    each = " and ".join(f"{x:.2f} segments per puzzle at $M_\\max = {m}$ ({f:.0%} of it)"
                        for x, m, f in zip(t["act_train_steps"], t["M_max"], share))
    over = act_segments_over(t)
    if not over:
        return f"Ours trains with {each}: within the rule's {ACT_SEGMENTS:.0%} at every $M_\\max$."
    where = " and ".join(f"$M_\\max = {m}$" for m in over)
    return (f"Ours trains with {each}: above the rule's {ACT_SEGMENTS:.0%} at {where}, which alone makes the verdict "
            "'differs', whatever the accuracy. The saving in segments is what our ACT does not show at this budget.")


def fixed_m_text(tab: pd.DataFrame, n: int, paper_fixed: dict[int, float] | None = None) -> str:
    """Fixed M at the largest M_max against fixed M at the smallest (``act_table``; ``n`` test puzzles each), beside
    the paper's fixed-M accuracies in % (``paper_fixed``, by M); '' with fewer than two fixed-M rows. When more
    segments score lower, names the likely cause: at equal training steps a puzzle stays in the batch for M of them."""
    t = tab.dropna(subset=["fixed_exact"]).sort_values("M_max") if len(tab) else tab
    if len(t) < 2:
        return ""
    lo, hi = t.iloc[0], t.iloc[-1]
    m_lo, m_hi = int(lo["M_max"]), int(hi["M_max"])
    gap, err = hi["fixed_exact"] - lo["fixed_exact"], noise(hi["fixed_exact"], lo["fixed_exact"], n, n)
    out = (f"Fixed $M = {m_hi}$ solves {pct(hi['fixed_exact'])}, {_versus(gap, err, 'above', 'below', 'level with')} "
           f"fixed $M = {m_lo}$ ({pct(lo['fixed_exact'])}, noise ±{points(err, False)})")
    paper_fixed = paper_fixed or {}
    if m_lo in paper_fixed and m_hi in paper_fixed:
        trend = "gains" if paper_fixed[m_hi] > paper_fixed[m_lo] else "does not gain"
        out += f"; the paper's fixed $M$ {trend} with more segments ({paper_fixed[m_lo]:g}% to {paper_fixed[m_hi]:g}%)"
    if gap < -err:
        share = {2: "half", 4: "a quarter"}.get(m_hi // m_lo if m_hi % m_lo == 0 else 0, f"{m_lo}/{m_hi}")
        out += (f". Training runs one segment per step and a puzzle stays in the batch for all $M$ of its segments, so in "
                f"the same number of steps fixed $M = {m_hi}$ trains on {share} as many puzzles as $M = {m_lo}$: a likely "
                "cause, which these rows do not isolate")
    return out + "."


def act_text(rows: pd.DataFrame, gpu_grid: pd.DataFrame | None = None, paper_fixed: dict[int, float] | None = None) -> str:
    """'What the rows show' for Fig. 5: at each M_max, ACT's training segments and exact accuracy against fixed M
    (while the fixed-M runs are missing, the segments alone); fixed M across M_max (:func:`fixed_m_text`, beside the
    paper's ``paper_fixed`` %); halting at test time; and each ACT model run for more segments than it trained with;
    what the ``gpu`` grid (its configs, if given) would add. '' while the grid has no finished run."""
    ok = ok_rows(rows)
    if not len(ok):
        return ""
    tab = act_table(rows)
    n = n_test_puzzles(ok.iloc[0])
    out = []
    pairs = tab.dropna(subset=["fixed_exact", "act_exact", "act_train_steps"]) if len(tab) else tab
    parts = []
    for r in pairs.itertuples():
        err = noise(r.act_exact, r.fixed_exact, n, n)
        parts.append(f"at $M_\\max = {r.M_max}$ ACT trains with {r.act_train_steps:.2f} segments per puzzle "
                     f"({r.act_train_steps / r.M_max:.0%} of $M_\\max$) and is {_versus(r.act_exact - r.fixed_exact, err)} "
                     f"fixed $M = {r.M_max}$ ({pct(r.act_exact)} vs {pct(r.fixed_exact)}, noise ±{points(err, False)})")
    if parts:
        out.append(f"With ACT, {'; '.join(parts)}.")
    elif len(tab.dropna(subset=["act_train_steps"])):
        out.append("With ACT, " + "; ".join(
            f"at $M_\\max = {r.M_max}$ HRM trains with {r.act_train_steps:.2f} segments per puzzle "
            f"({r.act_train_steps / r.M_max:.0%} of $M_\\max$)" for r in tab.dropna(subset=["act_train_steps"]).itertuples())
            + " (the fixed-M runs to compare with are not in this edition).")
    if fixed := fixed_m_text(tab, n, paper_fixed):
        out.append(fixed)
    halt = tab.dropna(subset=["act_halting_exact", "act_halting_steps"]) if len(tab) else tab
    if len(halt):
        out.append("Halting by the Q-head at test time as well, " + "; ".join(
            f"the $M_\\max = {r.M_max}$ model uses {r.act_halting_steps:.2f} segments and solves {pct(r.act_halting_exact)}"
            for r in halt.itertuples()) + ".")
    act = ok[ok["act"] == True]  # noqa: E712  (a bool column)
    evals = sorted(int(c.removeprefix("exact_at_M")) for c in act.columns if c.startswith("exact_at_M"))
    scaled = []
    for _, r in act.sort_values("halt_max_steps").iterrows():
        m = int(r["halt_max_steps"])
        more = [e for e in evals if e > m and finite(r[f"exact_at_M{e}"])]
        if not more or f"exact_at_M{m}" not in r.index or not finite(r[f"exact_at_M{m}"]):
            continue
        a, b = float(r[f"exact_at_M{m}"]), float(r[f"exact_at_M{more[-1]}"])
        err = noise(a, b, n, n)
        scaled.append(f"the model trained at $M_\\max = {m}$ goes from {pct(a)} after {m} segments to {pct(b)} after "
                      f"{more[-1]} ({_versus(b - a, err, 'a gain', 'a loss', 'within the noise')}, ±{points(err, False)})")
    if scaled:
        out.append(f"Given more segments at inference, {'; '.join(scaled)}.")
    rungs = unsolved_rungs(ok, ["act", "halt_max_steps"])
    if rungs:
        out.append(rungs)
    if gpu_grid is not None and len(gpu_grid):
        g = gpu_grid
        m_max = ", ".join(map(str, sorted(g["halt_max_steps"].unique())))
        out.append(f"The `gpu` grid trains fixed $M$ and ACT at $M_\\max$ = {m_max} "
                   f"at $d = {int(g['hidden_size'].max())}$ on {int(g['n_train'].max()):,} hard puzzles × "
                   f"{int(g['n_aug'].max())} augmentations for {int(g['train_steps'].max()):,} steps of batch "
                   f"{int(g['batch_size'].max())}, evaluated with up to {max(max(e) for e in g['eval_M'])} segments "
                   "(the paper's Fig. 5 trains to $M_\\max = 8$ and evaluates to 16).")
    return " ".join(out)


LOSS = ("softmax", "stablemax")  # cross-entropy over softmax or over HRM's stablemax
OPTIMIZER = {"adamw": "AdamW", "adam_atan2": "Adam-atan2"}


def original_choices_text(rows: pd.DataFrame) -> str:
    """'What the rows show' for the original's training choices (HRM's Sudoku config: stablemax cross-entropy,
    Adam-atan2): each choice's effect on exact accuracy with the other held fixed, whether it holds under both
    settings of the other, and the original's pair against ours (softmax, AdamW). '' until the 2 x 2 grid has a
    finished run of each pair."""
    ok = ok_rows(rows)
    if not len(ok):
        return ""
    get = {(lo, op): pick(ok, loss_type=lo, optimizer=op) for lo in LOSS for op in OPTIMIZER}
    if any(r is None for r in get.values()):
        return ""
    n = n_test_puzzles(ok.iloc[0])
    effects = {  # choice -> [(the other factor held at, gap, noise, new, old)]
        "stablemax": [(OPTIMIZER[op], *compare(get["stablemax", op], get["softmax", op]), get["stablemax", op],
                       get["softmax", op]) for op in OPTIMIZER],
        "Adam-atan2": [(lo, *compare(get[lo, "adam_atan2"], get[lo, "adamw"]), get[lo, "adam_atan2"],
                        get[lo, "adamw"]) for lo in LOSS]}
    said = {c: "; ".join(f"{points(gap)} with {held} ({pct(new['exact_accuracy'])} vs {pct(old['exact_accuracy'])}, "
                         f"noise ±{points(err, False)})" for held, gap, err, new, old in e) for c, e in effects.items()}
    out = [f"Stablemax instead of softmax changes exact accuracy by {said['stablemax']}. Adam-atan2 instead of AdamW: "
           f"{said['Adam-atan2']}."]
    orig, ours = get["stablemax", "adam_atan2"], get["softmax", "adamw"]
    gap, err = compare(orig, ours)
    out.append(f"The original's pair (stablemax, Adam-atan2) is {_versus(gap, err)} ours (softmax, AdamW): "
               f"{pct(orig['exact_accuracy'])} vs {pct(ours['exact_accuracy'])} (noise ±{points(err, False)}).")
    for choice, e in effects.items():
        moved = [held for held, g, nz, *_ in e if abs(g) > nz]
        same_sign = len({np.sign(g) for _, g, *_ in e}) == 1
        if len(moved) == len(e) and same_sign:
            out.append(f"{choice[:1].upper()}{choice[1:]} moves exact accuracy beyond the noise whatever the other choice: it matters here.")
        elif moved:
            out.append(f"{choice[:1].upper()}{choice[1:]} moves exact accuracy beyond the noise with {moved[0]} only, "
                       + ("and the other way" if not same_sign else "and less") + " with the other; with one run per "
                       "pair that is not an established effect.")
    if not any(abs(g) > nz for e in effects.values() for _, g, nz, *_ in e):
        out.append("Neither choice moves exact accuracy beyond the noise at this budget, so the page's defaults stand "
                   "in for the original's here.")
    out.append(f"Each value is one run scored on the same {n:,} test puzzles; the noise is that of two independent "
               "samples of that size, wider than a paired test on the same puzzles would give.")
    return " ".join(out)


def reset_text(l_residual, h_step_index) -> str:
    """Whether z_L shows the paper's reset pattern (Fig. 3: z_L converges within a high-level cycle and its update
    jumps back up after every z_H update). ``l_residual`` (S,): ||z_L,k - z_L,k-1|| for low-level steps k = 1..S;
    ``h_step_index``: the low-level steps after which z_H was updated. '' without an update to compare."""
    res = np.asarray(l_residual, dtype=float)
    after = [int(h) for h in h_step_index if 1 <= int(h) < len(res)]  # res[h] is step h + 1, res[h - 1] step h
    if not after or res[0] <= 0:
        return ""
    jumps = [res[h] / res[h - 1] for h in after if res[h - 1] > 0]
    grown = sorted(j for j in jumps if j > 1)
    out = f"$z_L$'s update grows again right after {len(grown)} of the {len(after)} $z_H$ updates inside the traced steps"
    if grown:
        out += f" (by a factor of {grown[0]:.2f}" + (f" to {grown[-1]:.2f}" if len(grown) > 1 else "") + ")"
    if len(grown) > len(after) / 2:
        out += ": the reset pattern of the paper's Fig. 3" + (
            "" if np.median(grown) >= 1.5 else f", in a weak form (median jump {np.median(grown):.2f}×)")
    return (out + f"; over the whole trace $z_L$'s update falls to {res[-1] / res[0]:.2g} of its first, so "
            + ("the resets do not keep the computation active as in the paper." if res[-1] / res[0] < 0.1 else
               "the computation stays active, as in the paper."))
