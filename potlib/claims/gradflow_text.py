"""Generated text of the gradient-flow pages (sources 004 and 002), built from the rows at render time.

Every sentence that states an outcome is written here from gradflow_* and frozen_context rows, with its
numbers formatted from the data and its wording chosen by a condition on the data, so that it stays true
when the rows change. The thresholds are the ones the verdicts in ``gradflow.py`` use where they overlap.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

STARVED = 0.1  # |dL/dh_0| of the no-residual stack below this share of pre-norm's: starved at init
COLLAPSE = 2.0  # first/last block gradient ratio below 10^-2 after training: collapsed
SOLVED = 0.95  # accuracy that counts as solving the copy task
AT_CHANCE = 1.5  # accuracy below 1.5× 1/vocab: at chance
STALL = 0.1  # final loss within 0.1 nat of ln(vocab): stalled at chance
EXPLODING_NORM = 10.0  # a raw gradient norm above this is an explosion (the verdict's rule)
CLIP_AT = 1.0  # the max_norm of the published claim
STEP_ARRAYS = ("loss_curve", "clipped", "raw_grad_norm")  # per-step artifacts clipping_text reads


def _lr(lr: float) -> str:
    """A learning rate as $10^{-3}$ when it is a power of ten, else as 0.003."""
    e = float(np.log10(lr))
    return f"$10^{{{round(e)}}}$" if abs(e - round(e)) < 1e-9 else f"{lr:g}"


def _span(values: pd.Series, fmt: str) -> str:
    """'0.19 to 1.00', or a single number when all values print the same."""
    lo, hi = format(float(values.min()), fmt), format(float(values.max()), fmt)
    return lo if lo == hi else f"{lo} to {hi}"


def _blocks(depths) -> str:
    return ", ".join(str(int(L)) for L in depths) + (" block" if len(depths) == 1 and int(depths[0]) == 1 else " blocks")


# -- residual layouts and depth (gradflow_depth rows) -----------------------------------------------------------
def _depth_means(depth: pd.DataFrame) -> pd.DataFrame:
    cols = ["act_grad_input_init", "param_slope_init", "param_slope_trained", "loss_trained", "accuracy_trained",
            "stream_rms_growth_init"]
    return depth[~depth["output_scaling"].astype(bool)].groupby(["norm", "n_layers"])[cols].mean()


def _init_sentence(m: pd.DataFrame) -> tuple[str, bool]:
    """At initialisation: is the no-residual stack's |dL/dh_0| starved relative to pre-norm's at equal depth?"""
    g0 = m["act_grad_input_init"]
    nr, pre = g0.xs("no_residual", level="norm"), g0.xs("pre_norm", level="norm")
    ratio = (nr / pre).dropna()
    if len(ratio) and (ratio < STARVED).any():
        L = int(ratio.idxmin())
        return (f"Already at initialisation the stack without residual connections starves its early layers: "
                f"$|\\partial L/\\partial h_0|$ is {nr[L]:.2g} at {_blocks([L])} against {pre[L]:.2g} with pre-norm.", True)
    near_one = 0.5 < g0.min() and g0.max() < 2
    return ("At initialisation no layout starves its early layers: $|\\partial L/\\partial h_0|$ lies between "
            f"{g0.min():.2f} and {g0.max():.2f} for every layout and depth"
            + ("; the LayerNorm inside every block keeps it near one even without the identity path, so the "
               "tutorial's \"vanishing\" picture does not describe a freshly initialised stack." if near_one else "."), False)


def _accuracy_clause(acc: pd.Series, vocab: int) -> str:
    """'reaches accuracy 0.19 at 2 blocks and stays at chance (1/16 = 0.06) from 6 blocks on', from acc by depth."""
    chance = 1 / vocab
    at, above = acc[acc <= AT_CHANCE * chance], acc[acc > AT_CHANCE * chance]
    parts = []
    if len(above):
        parts.append("reaches accuracy " + ", ".join(f"{a:.2f} at {_blocks([L])}" for L, a in above.items()))
    if len(at):
        where = (f"from {_blocks([at.index.min()])} on" if len(above) and at.index.min() > above.index.max()
                 else f"at {_blocks(list(at.index))}")
        parts.append(f"stays at chance (1/{vocab} = {chance:.2f}) {where}")
    return " and ".join(parts)


def _training_sentence(m: pd.DataFrame, vocab: int, starved: bool) -> str:
    """After training: the no-residual stack's accuracy and first/last gradient ratio; do the residual layouts solve it?"""
    nr = m.xs("no_residual", level="norm")
    L = int(nr.index.max())
    s = float(nr.loc[L, "param_slope_trained"])
    collapsed = s < -COLLAPSE
    grad = (f"the gradient reaching its first block collapses by {-s:.0f} orders of magnitude relative to the last "
            f"block's at {_blocks([L])} (Figure 1, bottom right)" if collapsed else
            f"the gradient reaching its first block stays within a factor $10^{{{abs(s):.1f}}}$ of the last block's "
            f"at {_blocks([L])}")
    res = {n: m.xs(n, level="norm")["accuracy_trained"] for n in ("pre_norm", "post_norm")}
    lo = min(float(a.min()) for a in res.values())
    lo_text = "1.00" if f"{lo:.2f}" == "1.00" else f"at least {lo:.2f}"
    solved = (f"while both residual layouts solve the task (accuracy {lo_text} at every depth)" if lo >= SOLVED else
              "while the residual layouts reach accuracy " + " and ".join(
                  f"{_span(a, '.2f')} ({n.replace('_', '-')})" for n, a in res.items()))
    lead = "The difference appears during training: without" if collapsed and not starved else "After training, without"
    return f"{lead} residual connections the stack {_accuracy_clause(nr['accuracy_trained'], vocab)}, and {grad}, {solved}."


def _pre_norm_sentence(m: pd.DataFrame) -> str:
    """Which end of the pre-norm stack gets more gradient (first/last block ratio), and the stream's growth."""
    pre = m.xs("pre_norm", level="norm")
    L = int(pre.index.max())
    s0, s1, g = (float(pre.loc[L, c]) for c in ("param_slope_init", "param_slope_trained", "stream_rms_growth_init"))
    ratio = (f"first block's gradient norm over the last's: $10^{{{s0:+.2f}}}$ at initialisation and $10^{{{s1:+.2f}}}$ "
             f"after training, at {_blocks([L])}")
    if s0 > 0 and s1 > 0:
        why = (", because the residual stream grows with depth (its RMS by {:.1f}× over the stack at initialisation) and "
               "every LayerNorm divides the gradient by the stream's scale (next section)".format(g) if g > 1 else "")
        return f"Pre-norm without output scaling gives its *early* blocks more gradient than its late ones ({ratio}){why}."
    if s0 < 0 and s1 < 0:
        return f"Pre-norm without output scaling gives its late blocks more gradient than its early ones ({ratio})."
    return f"Pre-norm without output scaling shifts gradient between its early and late blocks during training ({ratio})."


def _post_norm_sentence(depth: pd.DataFrame, m: pd.DataFrame) -> str:
    """Post-norm against pre-norm at the largest depth, by the verdict's rule (twice the loss, or a diverged run)."""
    L = int(depth["n_layers"].max())
    lp, lq = float(m.loc[("pre_norm", L), "loss_trained"]), float(m.loc[("post_norm", L), "loss_trained"])
    div = int((depth[depth["norm"] == "post_norm"]["status"] == "diverged").sum())
    size = (f"up to {_blocks([L])}, $d = {int(depth['d_model'].max())}$, lr {_lr(float(depth['lr'].max()))} "
            "without warmup")
    numbers = (f"held-out loss {lq:.3f} against {lp:.3f} at {_blocks([L])}, "
               + (f"{div} diverged post-norm run{'s' if div > 1 else ''}" if div else "no post-norm run diverged"))
    acc = [float(m.loc[(n, L), "accuracy_trained"]) for n in ("pre_norm", "post_norm")]
    if max(acc) < SOLVED and div == 0:
        return (f"Neither pre-norm nor post-norm solves the task at this size ({size}; accuracy {acc[0]:.2f} and "
                f"{acc[1]:.2f} at {_blocks([L])}), so these rows cannot compare their stability.")
    if lq > 2 * lp or div > 0:
        return (f"Post-norm at this size ({size}) trains less stably than pre-norm ({numbers}), as "
                "{cite}`xiong2020layernorm` report.")
    return (f"Post-norm at this size ({size}) trains as well as pre-norm ({numbers}); the post-norm instability "
            "reported by {cite}`xiong2020layernorm` needs larger models or learning rates than this grid reaches.")


def depth_text(depth: pd.DataFrame) -> str:
    """What the gradflow_depth rows show (no output scaling): early-layer gradient at initialisation, what training
    does to the stack without residual connections, which end of pre-norm gets more gradient, post-norm vs pre-norm."""
    m = _depth_means(depth)
    vocab = int(depth["vocab"].max())
    init, starved = _init_sentence(m)
    return " ".join([init, _training_sentence(m, vocab, starved), _pre_norm_sentence(m), _post_norm_sentence(depth, m)])


# -- softmax scaling (gradflow_softmax rows) ----------------------------------------------------------------------
def softmax_text(softmax: pd.DataFrame) -> str:
    """Without 1/sqrt(d_k): does the attention saturate and the Jacobian shrink as d_k grows, does the gradient
    reaching the query vanish, and how spread is the attention with and without the scale."""
    m = softmax.groupby(["scaled", "d_k"]).mean(numeric_only=True)
    u, s = m.xs(False, level="scaled"), m.xs(True, level="scaled")
    lo, hi = int(u.index.min()), int(u.index.max())
    at = f"$d_k = {hi}$"
    sat = u["saturated_fraction"]
    saturates = sat[hi] > sat[lo] and sat[hi] > s.loc[hi, "saturated_fraction"]
    jac = u["softmax_jacobian_fro_mean"]
    shrinks = jac[hi] < jac[lo]
    first = (f"Without scaling, the attention {'saturates' if saturates else 'does not saturate'} as $d_k$ grows (queries "
             f"whose largest weight exceeds 0.99: {sat[lo]:.0%} at $d_k = {lo}$, {sat[hi]:.0%} at {at}, "
             f"{s.loc[hi, 'saturated_fraction']:.0%} with the scale) and the softmax Jacobian "
             f"{'shrinks' if shrinks else 'does not shrink'} (norm {jac[lo]:.3f} to {jac[hi]:.3f}; "
             f"{s.loc[hi, 'softmax_jacobian_fro_mean']:.3f} with the scale)"
             + (", as the tutorial says." if saturates and shrinks else "."))
    gq, gs = u["grad_q_norm_mean"], float(s.loc[hi, "grad_q_norm_mean"])
    if gq[hi] < gs:  # the verdict's rule: smaller than with the scale
        return (f"{first} The gradient reaching the query vanishes with it: $|\\partial L/\\partial q|$ is {gq[hi]:.3g} "
                f"at {at} against {gs:.3g} with the scale.")
    ent = u["entropy_norm_mean"][hi], float(s.loc[hi, "entropy_norm_mean"])
    spread = (" What the scale buys is a gradient spread over many keys instead of concentrated on the few that "
              f"dominate: the attention's normalised entropy at {at} is {ent[1]:.2f} with the scale and {ent[0]:.2f} "
              "without." if ent[0] < ent[1] else "")
    why = (", because the unscaled scores carry a factor $\\sqrt{d_k}$ (their standard deviation is "
           f"{u.loc[hi, 'score_std']:.3g} at {at}, where $\\sqrt{{d_k}}$ = {np.sqrt(hi):.3g}) that outgrows the "
           "Jacobian's shrinkage" if gq[hi] > gq[lo] else "")
    return (f"{first} But the gradient reaching the query does **not** vanish: $|\\partial L/\\partial q|$ "
            f"{'grows' if gq[hi] > gq[lo] else 'goes'} from {gq[lo]:.3g} at $d_k = {lo}$ to {gq[hi]:.3g} at {at}, against "
            f"{gs:.3g} with the scale{why}.{spread}")


# -- clipping (gradflow_clipping rows and their per-step arrays) -------------------------------------------------
def _explosion_sentence(clipping: pd.DataFrame) -> str:
    worst = float(clipping["raw_grad_norm_max"].max())
    exploded = (clipping["raw_grad_norm_max"] > EXPLODING_NORM) | (clipping["loss_spikes"] > 0)
    if not exploded.any():
        return (f"In these rows no run explodes: the largest raw gradient norm in any run is {worst:.2f} and no "
                "step's loss rises by more than one nat.")
    return (f"{int(exploded.sum())} of {len(clipping)} runs explode (raw gradient norm above {EXPLODING_NORM:g}, or a "
            f"loss rising by more than one nat in a step); the largest raw gradient norm is {worst:.3g}.")


def _phase_clause(runs: pd.DataFrame, steps: pd.DataFrame, none: pd.DataFrame) -> str:
    """Where the clipped steps of ``runs`` lie in training, and how large the gradients they clip are."""
    spans, falls, biggest = [], [], []
    for _, g in steps[steps["cfg_id"].isin(runs["cfg_id"])].groupby("cfg_id"):
        g = g.sort_values("step")
        loss, hit = g["loss_curve"].to_numpy(float), g["clipped"].to_numpy(float) > 0
        if not hit.any() or not loss[0] > loss[-1]:
            continue
        i, j = np.flatnonzero(hit)[[0, -1]]
        spans.append((int(g["step"].iloc[i]), int(g["step"].iloc[j]), (j - i + 1) / len(loss)))
        falls.append((loss[i] - loss[min(j + 1, len(loss) - 1)]) / (loss[0] - loss[-1]))  # loss is logged before each update
        biggest.append(float(g["raw_grad_norm"].to_numpy(float)[hit].max()))
    if not spans:
        return ""
    span, fall = float(np.mean([s[2] for s in spans])), float(np.mean(falls))
    where = (f" The clipped steps lie between steps {min(s[0] for s in spans)} and {max(s[1] for s in spans)} (earliest "
             "and latest over seeds)" + (", in the phase in which the loss falls fastest" if fall >= 2 * span else "")
             + f": per run, the span from the first to the last clipped step covers {span:.0%} of the steps and "
             f"{fall:.0%} of the loss's total fall.")
    mx, ref = max(biggest), float(none["raw_grad_norm_max"].max()) if len(none) else float("nan")
    calm = len(none) and int(none["loss_spikes"].sum()) == 0 and mx <= 1.5 * ref
    return where + (f" The gradients it clips are ordinary ones: raw norm at most {mx:.2f}, against {ref:.2f} in the "
                    "unclipped runs, which train without a loss spike." if calm else
                    f" The gradients it clips reach a raw norm of {mx:.3g}, against {ref:.3g} in the unclipped runs.")


def _lr_sentence(clipping: pd.DataFrame, steps: pd.DataFrame, lr: float) -> str:
    """At one learning rate: does every setting stall at chance, and if not, how often clipping at 1.0 acts."""
    at = clipping[clipping["lr"] == lr]
    vocab = int(at["vocab"].max())
    final = at.groupby(["clip", "threshold"])["final_loss"].mean()
    stalled = final > np.log(vocab) - STALL
    none = at[at["clip"] == "none"]
    med = float(none["raw_grad_norm_median"].mean()) if len(none) else float(at["raw_grad_norm_median"].mean())
    if stalled.all():
        small = (f"*small* gradients (median raw norm {med:.2f}, below the clipping threshold {CLIP_AT:.1f})"
                 if med < CLIP_AT else f"gradients of median raw norm {med:.2f}")
        return (f"At lr {_lr(lr)} every setting stalls near $\\ln {vocab}$ = {np.log(vocab):.2f} (chance; final loss "
                f"{_span(final, '.3f')}) with {small}, a collapse that clipping cannot undo.")
    trains = ("every setting trains (final loss at most {:.3f})".format(final.max()) if not stalled.any() else
              f"{int(stalled.sum())} of {len(stalled)} settings stall near chance")
    runs = at[(at["clip"] == "global_norm") & (at["threshold"] == CLIP_AT)]
    if runs.empty:
        return f"At lr {_lr(lr)} {trains}."
    frac = float(runs["clipped_fraction"].mean())
    if frac == 0:
        return f"At lr {_lr(lr)} {trains}, and clipping at {CLIP_AT:.1f} never acts."
    return f"At lr {_lr(lr)} {trains}, and clipping at {CLIP_AT:.1f} acts on {frac:.0%} of the steps." + _phase_clause(runs, steps, none)


def clipping_text(clipping: pd.DataFrame, steps: pd.DataFrame) -> str:
    """Does any run explode; per learning rate (highest first), does every setting stall at chance, and if not, on
    which steps global-norm clipping at 1.0 acts. ``steps``: the runs' ``STEP_ARRAYS`` as a long table with a
    ``step`` column (``potlib.results.artifacts_long(clipping, STEP_ARRAYS, root, index_name="step")``)."""
    parts = [_explosion_sentence(clipping)]
    parts += [_lr_sentence(clipping, steps, float(lr)) for lr in sorted(clipping["lr"].unique(), reverse=True)]
    return " ".join(parts)


# -- frozen context (frozen_context rows) -------------------------------------------------------------------------
def frozen_params_text(frozen: pd.DataFrame) -> str:
    """Under the frozen context: how many parameter tensors still get gradient, how far the gradient is from full
    backprop's, and whether embedding rows of tokens that occur only in the context get any."""
    fr, full = frozen[frozen["mode"] == "frozen"], frozen[frozen["mode"] == "full"]
    got, total = int(fr["params_with_grad"].min()), int(fr["params_total"].max())
    first = (f"Every parameter tensor still receives gradient under the frozen context ({got} of {total}, at every "
             "context length)" if got == total else
             f"Under the frozen context only {got} of {total} parameter tensors receive gradient")
    err = fr["grad_rel_err_total"]
    lost = (f"; what is lost is the part that flows through the context's own computation (the frozen gradient differs "
            f"from the full one by {_span(err, '.1%')} of the full gradient's norm, cosine at least "
            f"{fr['grad_cosine_total'].min():.3f})")
    leak = int(fr["ctx_only_tok_rows_with_grad"].max())
    ref = full["ctx_only_tok_rows_with_grad"]
    rows = (f"{int(ref.min())} to {int(ref.max())}" if len(ref) and ref.min() != ref.max()
            else f"{int(ref.max())}" if len(ref) else "no row")
    tok = (f", and the token embeddings of tokens that occur only in the context receive none at all (0 such rows "
           f"get gradient at any context length, against {rows} with full backprop)." if leak == 0 else
           f", and up to {leak} embedding rows of tokens that occur only in the context still receive gradient "
           f"({rows} with full backprop).")
    return first + lost + tok


def memory_source_text(frozen: pd.DataFrame) -> str:
    """Where the rows' peak memory and wall times come from (device, tracker, repetitions), from their provenance."""
    kinds = set(frozen["prov_peak_memory_kind"])
    reps = int(frozen["timing_reps"].max())
    times = f"Wall times are medians of {reps} steps" if reps > 1 else "Wall times are single steps"
    if kinds == {"cpu_memtracker"}:
        return ("These rows ran on a CPU, so memory comes from PyTorch's tensor-level tracker "
                "(`torch.distributed._tools.mem_tracker`), which follows every tensor storage the step creates; on a GPU "
                f"the same code reads `torch.cuda.max_memory_allocated`. {times} on a CPU: indicative only.")
    if kinds == {"cuda_max_memory_allocated"}:
        device = ", ".join(sorted(set(frozen["prov_device"].astype(str))))
        return (f"These rows ran on a GPU ({device}), so memory is `torch.cuda.max_memory_allocated`; on a CPU the same "
                f"code uses PyTorch's tensor-level tracker (`torch.distributed._tools.mem_tracker`). {times}.")
    return (f"These rows mix memory trackers ({', '.join(sorted(map(str, kinds)))}): their peaks are not comparable "
            f"across trackers. {times}.")


def key_bias_text(full_norm: float, frozen_norm: float, scale: float) -> str:
    """Caption sentence on the key bias's gradient norm (all layers) under full backprop and frozen; a norm below
    1e-6 of ``scale`` (the largest tensor's gradient norm) counts as none."""
    none_full, none_frozen = full_norm < 1e-6 * scale, frozen_norm < 1e-6 * scale
    why = "adding the same q·b_k to every score leaves the softmax unchanged"
    if none_full and not none_frozen:
        return (f"The key bias gets no gradient under full backprop ({full_norm:.1e}: {why}) but does when frozen "
                f"({frozen_norm:.1e}), because the cached context keys no longer carry it.")
    if none_full and none_frozen:
        return f"The key bias gets no gradient under full backprop nor when frozen ({why})."
    return f"The key bias's gradient norm is {full_norm:.1e} under full backprop and {frozen_norm:.1e} when frozen."
