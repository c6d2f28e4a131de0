"""Generated page text (potlib.claims.gradflow_text): each function on two tiny hand-made row sets with
opposite outcomes; the wording must follow the rows, never stay fixed."""

import numpy as np
import pandas as pd

from potlib.claims import gradflow_text as T


def _depth(nr_init: float, nr_slope: float, nr_acc: float, post_loss: float, post_status: str, pre_slope: float):
    rows = []
    for norm in ("pre_norm", "post_norm", "no_residual"):
        for L in (2, 6):
            rows.append({
                "norm": norm, "n_layers": L, "output_scaling": False, "seed": 0, "vocab": 16, "d_model": 64,
                "lr": 1e-3, "status": post_status if norm == "post_norm" else "ok",
                "act_grad_input_init": nr_init if norm == "no_residual" else 1.0,
                "param_slope_init": pre_slope if norm == "pre_norm" else 0.5,
                "param_slope_trained": {"no_residual": nr_slope, "pre_norm": pre_slope}.get(norm, -0.3),
                "loss_trained": {"no_residual": 2.77, "post_norm": post_loss}.get(norm, 0.02),
                "accuracy_trained": nr_acc if norm == "no_residual" else 1.0,
                "stream_rms_growth_init": 3.0,
            })
    return pd.DataFrame(rows)


def test_depth_text_follows_the_rows():
    good = T.depth_text(_depth(nr_init=0.9, nr_slope=-8.0, nr_acc=0.06, post_loss=0.02, post_status="ok", pre_slope=0.8))
    bad = T.depth_text(_depth(nr_init=0.01, nr_slope=-0.5, nr_acc=0.5, post_loss=1.0, post_status="diverged",
                              pre_slope=-0.8))
    assert "no layout starves" in good and "starves its early layers:" in bad and "no layout" not in bad
    assert "collapses by 8 orders of magnitude" in good and "stays within a factor" in bad
    assert "stays at chance (1/16 = 0.06) at 2, 6 blocks" in good and "reaches accuracy 0.50 at 2 blocks" in bad
    assert "*early* blocks more gradient" in good and "late blocks more gradient" in bad
    assert "trains as well as pre-norm" in good and "less stably than pre-norm" in bad
    assert "no post-norm run diverged" in good and "2 diverged post-norm runs" in bad


def _softmax(grad_unscaled_hi: float, sat_hi: float):
    rows = []
    for scaled in (False, True):
        for d_k in (4, 64):
            hi = d_k == 64 and not scaled
            rows.append({"d_k": d_k, "scaled": scaled, "seed": 0, "score_std": np.sqrt(d_k) if not scaled else 1.0,
                         "saturated_fraction": sat_hi if hi else 0.0,
                         "softmax_jacobian_fro_mean": 0.1 if hi else 0.3,
                         "grad_q_norm_mean": grad_unscaled_hi if hi else 1.0,
                         "entropy_norm_mean": 0.1 if hi else 0.9})
    return pd.DataFrame(rows)


def test_softmax_text_follows_the_rows():
    grows = T.softmax_text(_softmax(grad_unscaled_hi=10.0, sat_hi=0.5))
    vanishes = T.softmax_text(_softmax(grad_unscaled_hi=0.01, sat_hi=0.0))
    assert "does **not** vanish" in grows and "grows from 1 at $d_k = 4$ to 10" in grows
    assert "vanishes with it" in vanishes and "not** vanish" not in vanishes
    assert "the attention saturates" in grows and "does not saturate" in vanishes
    assert "What the scale buys" in grows


def _clipping(explode: bool):
    """Two learning rates: at 1e-2 every setting stalls unless ``explode``; at 1e-3 they train, clipping at 1.0
    acting on steps 1-2 of 6 (where the loss falls) unless ``explode``, where it never acts."""
    rows, steps = [], []
    for lr in (1e-3, 1e-2):
        for clip, thr in (("none", 1.0), ("global_norm", 1.0)):
            cid = f"{clip}-{lr:g}"
            stall = lr == 1e-2 and not explode
            acts = clip == "global_norm" and lr == 1e-3 and not explode
            rows.append({"cfg_id": cid, "lr": lr, "clip": clip, "threshold": thr, "seed": 0, "vocab": 16,
                         "final_loss": np.log(16) if stall else 0.02, "raw_grad_norm_max": 50.0 if explode else 2.0,
                         "raw_grad_norm_median": 0.1 if stall else 0.5, "loss_spikes": int(explode),
                         "clipped_fraction": 2 / 6 if acts else 0.0})
            loss = [2.8] * 6 if stall else [2.8, 2.7, 1.5, 0.2, 0.05, 0.02]
            clipped = [0, 1, 1, 0, 0, 0] if acts else [0] * 6
            norm = [0.5, 2.0, 1.5, 0.5, 0.5, 0.5]
            steps += [{"cfg_id": cid, "step": i, "loss_curve": loss[i], "clipped": clipped[i], "raw_grad_norm": norm[i]}
                      for i in range(6)]
    return pd.DataFrame(rows), pd.DataFrame(steps)


def test_clipping_text_follows_the_rows():
    calm = T.clipping_text(*_clipping(explode=False))
    wild = T.clipping_text(*_clipping(explode=True))
    assert "no run explodes" in calm and "4 of 4 runs explode" in wild
    assert "every setting stalls near $\\ln 16$" in calm and "stalls" not in wild
    assert "acts on 33% of the steps" in calm and "between steps 1 and 2" in calm and "falls fastest" in calm
    assert "never acts" in wild and "acts on" not in wild


def _frozen(leak: int, with_grad: int, kind: str):
    rows = []
    for mode in ("full", "frozen"):
        for n_ctx in (64, 128):
            rows.append({"mode": mode, "n_ctx": n_ctx, "params_total": 10,
                         "params_with_grad": with_grad if mode == "frozen" else 10,
                         "grad_rel_err_total": 0.08 if mode == "frozen" else 0.0,
                         "grad_cosine_total": 0.99 if mode == "frozen" else 1.0,
                         "ctx_only_tok_rows_with_grad": leak if mode == "frozen" else n_ctx,
                         "prov_peak_memory_kind": kind, "prov_device": "dev", "timing_reps": 3})
    return pd.DataFrame(rows)


def test_frozen_context_text_follows_the_rows():
    clean = T.frozen_params_text(_frozen(leak=0, with_grad=10, kind="cpu_memtracker"))
    leaky = T.frozen_params_text(_frozen(leak=5, with_grad=7, kind="cpu_memtracker"))
    assert "Every parameter tensor still receives gradient" in clean and "only 7 of 10" in leaky
    assert "receive none at all" in clean and "up to 5 embedding rows" in leaky
    assert "against 64 to 128 with full backprop" in clean
    cpu = T.memory_source_text(_frozen(0, 10, "cpu_memtracker"))
    gpu = T.memory_source_text(_frozen(0, 10, "cuda_max_memory_allocated"))
    assert "ran on a CPU" in cpu and "ran on a GPU (dev)" in gpu and "medians of 3 steps" in gpu


def test_key_bias_text_follows_the_numbers():
    assert "no gradient under full backprop" in T.key_bias_text(1e-12, 1e-4, 1.0)
    assert "but does when frozen" in T.key_bias_text(1e-12, 1e-4, 1.0)
    both = T.key_bias_text(1e-2, 2e-2, 1.0)
    assert "no gradient" not in both and "1.0e-02 under full backprop" in both
