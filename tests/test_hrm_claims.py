"""The HRM chapter's verdict rules (potlib.claims.hrm) flip with the data they read."""

import pandas as pd
import pytest

from potlib.claims import hrm, hrm_text


def frame(*rows, n_test=700):
    return pd.DataFrame([{"status": "ok", "n_test": n_test, **r} for r in rows])


def depth_width(shared, deep, wide):
    return frame({"n_layers": 4, "hidden_size": 64, "exact_accuracy": shared},
                 {"n_layers": 2, "hidden_size": 64, "exact_accuracy": shared / 2},
                 {"n_layers": 16, "hidden_size": 64, "exact_accuracy": deep},
                 {"n_layers": 4, "hidden_size": 192, "exact_accuracy": wide})


def test_depth_not_width_flips_with_the_data():
    assert hrm.depth_not_width(depth_width(0.30, 0.50, 0.31)).verdict == "reproduced"
    assert hrm.depth_not_width(depth_width(0.30, 0.31, 0.50)).verdict == "differs"
    assert hrm.depth_not_width(depth_width(0.30, 0.50, 0.40)).verdict == "trend reproduced"
    assert hrm.depth_not_width(depth_width(0.0, 0.0, 0.005)).verdict == "not reproducible here"


def test_depth_not_width_shows_the_equal_size_pair():
    rows = frame({"n_layers": 4, "hidden_size": 64, "exact_accuracy": 0.05, "n_params": 263_552},
                 {"n_layers": 16, "hidden_size": 64, "exact_accuracy": 0.17, "n_params": 1_049_984},
                 {"n_layers": 4, "hidden_size": 128, "exact_accuracy": 0.20, "n_params": 1_051_392},
                 {"n_layers": 4, "hidden_size": 192, "exact_accuracy": 0.38, "n_params": 1_773_696})
    claim = hrm.depth_not_width(rows)
    assert claim.verdict == "differs"
    assert "at equal size (1.05M vs 1.05M parameters) 16 × 64: 17.0% vs 4 × 128: 20.0%" in claim.ours
    assert "equal size" not in hrm.depth_not_width(rows[rows["hidden_size"] != 128]).ours  # no pair within 10%


def test_depth_not_width_is_pending_until_the_grid_is_whole():
    rows = depth_width(0.30, 0.50, 0.31)
    grid = pd.concat([rows, rows.iloc[:1].assign(n_layers=8)], ignore_index=True)
    assert hrm.depth_not_width(rows, grid).verdict == "pending"
    assert hrm.depth_not_width(rows, rows).verdict == "reproduced"


def layers(looped, deep, hrm_acc, counts=(4, 8, 16)):
    rows = [{"model": "transformer", "layers_computed": n, "exact_accuracy": a} for n, a in zip(counts, deep)]
    rows += [{"model": "recurrent_transformer", "layers_computed": n, "exact_accuracy": a} for n, a in zip(counts, looped)]
    rows += [{"model": "hrm", "layers_computed": 24, "exact_accuracy": hrm_acc}]
    return frame(*rows)


def test_recurrence_and_hrm_rules():
    up = layers((0.3, 0.5, 0.7), (0.2, 0.3, 0.4), 0.9)
    assert hrm.recurrence_beats_depth(up).verdict == "reproduced"
    assert hrm.hrm_beats_both(up).verdict == "reproduced"
    down = layers((0.2, 0.3, 0.4), (0.3, 0.5, 0.7), 0.3)
    assert hrm.hrm_beats_both(down).verdict == "differs"
    # below the paper's crossover (64 layers computed) its own looped model is behind: the claim is not testable
    below = hrm.recurrence_beats_depth(down)
    assert below.verdict == "not reproducible here" and "below 64, the first count at which the paper's looped stack is ahead" in below.ours
    assert hrm.recurrence_beats_depth(layers((0.2, 0.3, 0.4), (0.3, 0.5, 0.7), 0.3, (16, 32, 64))).verdict == "differs"
    crossing = layers((0.2, 0.3, 0.8), (0.2, 0.3, 0.4), 0.5)  # the paper's own shape: ahead only at the top
    assert hrm.recurrence_beats_depth(crossing).verdict == "reproduced"
    closing = layers((0.1, 0.3, 0.41), (0.3, 0.35, 0.40), 0.5, (16, 32, 64))  # behind, then level: the margin grows
    assert hrm.recurrence_beats_depth(closing).verdict == "trend reproduced"
    noise_only = layers((0.05, 0.3, 0.41), (0.05, 0.35, 0.40), 0.5, (16, 32, 64))  # +0.01 against 0: noise, no trend
    assert hrm.recurrence_beats_depth(noise_only).verdict == "differs"


def act_rows(fixed, act, steps, gain):
    """Fixed-M and ACT rows at M_max 2 and 4, as HRM evaluates them (M_max segments per test puzzle)."""
    rows = []
    for m, f, a, s in zip((2, 4), fixed, act, steps):
        rows.append({"act": False, "halt_max_steps": m, "exact_accuracy": f, "train_mean_steps": m})
        rows.append({"act": True, "halt_max_steps": m, "exact_accuracy": a, "train_mean_steps": s,
                     "act_exact": a, "act_mean_steps": s, "exact_at_M2": a if m == 2 else a - 0.05,
                     "exact_at_M4": a if m == 4 else a + gain / 2, "exact_at_M8": a + gain})
    return frame(*rows)


def test_act_rules_read_hrms_protocol():
    assert hrm.act_fewer_steps(act_rows((0.5, 0.6), (0.49, 0.6), (1.4, 1.8), 0.2)).verdict == "reproduced"
    assert hrm.act_fewer_steps(act_rows((0.5, 0.6), (0.42, 0.52), (1.4, 1.8), 0.2)).verdict == "trend reproduced"
    # fewer segments bought with a collapse in accuracy is no trend
    assert hrm.act_fewer_steps(act_rows((0.5, 0.6), (0.1, 0.1), (1.0, 1.0), 0.2)).verdict == "differs"
    assert hrm.act_fewer_steps(act_rows((0.5, 0.6), (0.5, 0.6), (2.0, 4.0), 0.2)).verdict == "differs"
    assert hrm.inference_scaling(act_rows((0.5, 0.6), (0.5, 0.6), (1.4, 1.8), 0.2)).verdict == "reproduced"
    assert hrm.inference_scaling(act_rows((0.5, 0.6), (0.5, 0.6), (1.4, 1.8), -0.2)).verdict == "differs"
    tab = hrm.act_table(act_rows((0.5, 0.6), (0.49, 0.6), (1.4, 1.8), 0.2))
    assert list(tab["M_max"]) == [2, 4] and tab["act_train_steps"].tolist() == [1.4, 1.8]
    assert "within the rule's 90% at every" in hrm_text.act_rule_text(tab)
    # the committed rows' pattern: level accuracy, but 92% of M_max = 4 segments is not "fewer"
    over = hrm.act_table(act_rows((0.10, 0.046), (0.107, 0.053), (1.74, 3.66), 0.0))
    assert hrm.act_fewer_steps(act_rows((0.10, 0.046), (0.107, 0.053), (1.74, 3.66), 0.0)).verdict == "differs"
    assert "3.66 segments per puzzle at $M_\\max = 4$ (92% of it): above the rule's 90% at $M_\\max = 4$, which alone" in \
        hrm_text.act_rule_text(over)


def test_a_diverged_run_ends_pending_with_its_own_verdict():
    rows = depth_width(0.30, 0.50, 0.31)
    rows.loc[rows["n_layers"] == 16, "status"] = "diverged"
    assert hrm.depth_not_width(rows, rows).verdict == "pending"
    out = hrm.hrm(rows, rows.iloc[:0], rows.iloc[:0], rows.iloc[:0], rows.iloc[:0], {"hrm_depth_width": rows})[0]
    assert out.verdict == "not reproducible here" and "16x64" in out.ours


@pytest.mark.parametrize("trained,untrained,verdict", [((90, 30), (41, 42), "reproduced"), ((30, 30), (41, 42), "differs"),
                                                        ((36, 30), (41, 42), "trend reproduced")])
def test_participation_ratio_rule(trained, untrained, verdict):
    rows = frame({"model": "hrm", "pr_zH_trained": trained[0], "pr_zL_trained": trained[1],
                  "pr_zH_untrained": untrained[0], "pr_zL_untrained": untrained[1]})
    assert hrm.participation_ratio(rows).verdict == verdict


def test_memory_rule():
    steps = (1, 2, 4, 8, 32)
    flat = [{"grad_mode": "one_step", "steps_per_segment": s, "peak_bytes": 300} for s in steps]
    # the measured shape: a fixed floor, then BPTT's excess linear in the steps
    linear = [{"grad_mode": "bptt", "steps_per_segment": s, "peak_bytes": 300 + 60 * max(s - 2, 0)} for s in steps]
    assert hrm.one_step_memory(frame(*flat, *linear)).verdict == "reproduced"
    same = [{"grad_mode": "bptt", "steps_per_segment": s, "peak_bytes": 300} for s in steps]
    assert hrm.one_step_memory(frame(*flat, *same)).verdict == "differs"


def test_level_accuracy_keeps_the_ladder_order():
    rows = frame({"n_layers": 2, "exact_acc_level_b50": 0.2, "exact_acc_level_b5": 1.0, "exact_acc_level_hard": 0.0})
    long = hrm.level_accuracy(rows, ["n_layers"])
    assert list(long["level"]) == ["b5", "b50", "hard"] and list(long["accuracy"]) == [1.0, 0.2, 0.0]
    assert hrm.n_test_puzzles(rows.iloc[0]) == 2100


def test_depth_width_text_follows_the_rows():
    def rows(deep, twin, widest):
        return frame({"n_layers": 4, "hidden_size": 64, "exact_accuracy": 0.05, "n_params": 263_552, "final_train_loss": 0.57},
                     {"n_layers": 8, "hidden_size": 64, "exact_accuracy": 0.10, "n_params": 525_696, "final_train_loss": 0.47},
                     {"n_layers": 16, "hidden_size": 64, "exact_accuracy": deep, "n_params": 1_049_984, "final_train_loss": 0.40},
                     {"n_layers": 4, "hidden_size": 128, "exact_accuracy": twin, "n_params": 1_051_392, "final_train_loss": 0.4},
                     {"n_layers": 4, "hidden_size": 192, "exact_accuracy": widest, "n_params": 1_773_696, "final_train_loss": 0.3})
    gpu = pd.DataFrame({"n_layers": [4, 32, 4], "hidden_size": [256, 256, 768], "train_steps": 4000, "batch_size": 256})
    text = hrm_text.depth_width_text(rows(0.17, 0.20, 0.38).assign(train_steps=1000), gpu)
    assert text.startswith("Grown from the shared point, width gains more than depth here")
    assert "neither axis beats the other size for size" in text and "is below the 8-layer stack's" in text
    assert "single run" not in text  # both axes ordered: nothing says the runs vary beyond the sampling noise
    drop = hrm_text.depth_width_text(rows(0.08, 0.20, 0.38).assign(train_steps=1000), gpu)
    assert "scores lower in 1 place (at most 2.0 points: 16 × 64 8.0% against 8 × 64 10.0%)" in drop
    assert "The `gpu` grid trains 4-32 layers at $d = 256$ and widths up to 768" in text
    assert "size for size, depth wins" in hrm_text.depth_width_text(rows(0.40, 0.20, 0.38).assign(train_steps=1000), gpu)
    assert "within the noise of each other" in hrm_text.depth_width_text(rows(0.37, 0.20, 0.38).assign(train_steps=1000), gpu)


def test_layers_computed_text_follows_the_rows():
    up = layers((0.3, 0.5, 0.7), (0.2, 0.3, 0.4), 0.9).assign(n_params=[1e5, 2e5, 4e5, 5e4, 5e4, 5e4, 1e5], halt_max_steps=1)
    text = hrm_text.layers_computed_text(up)
    assert "the looped 2-block stack is ahead of the Transformer beyond the noise at every count" in text
    assert "at 16, 70.0% vs 40.0% (±" in text and "0.05M parameters at every count" in text
    assert "HRM (0.10M parameters) reaches 90.0% with 24 layers computed (M = 1)" in text
    assert "ahead of the best Transformer (40.0% at 16 layers computed" in text
    assert "computes more layers than any other model here (24 or more against at most 16)" in text
    mixed = hrm_text.layers_computed_text(layers((0.1, 0.3, 0.7), (0.3, 0.3, 0.4), 0.4).assign(halt_max_steps=2))
    assert "the looped 2-block stack is ahead of the Transformer at 16, behind it at 4 and level at 8" in mixed
    assert "behind the best looped 2-block stack" in mixed
    behind_only = hrm_text.layers_computed_text(layers((0.05, 0.09, 0.18), (0.05, 0.19, 0.17), 0.1).assign(halt_max_steps=1))
    assert "the looped 2-block stack is behind the Transformer at 8 and level at 4, 16" in behind_only
    assert hrm_text.layers_computed_text(layers((0.3,) * 3, (0.3,) * 3, 0.3).iloc[:0]) == ""


def test_unsolved_rungs_names_them():
    rows = frame({"model": "hrm", "layers_computed": 12, "exact_acc_level_b5": 0.9, "exact_acc_level_hard": 0.0},
                 {"model": "transformer", "layers_computed": 4, "exact_acc_level_b5": 0.5, "exact_acc_level_hard": 0.04})
    assert "on the rungs hard, so the comparison rests on b5" in hrm_text.unsolved_rungs(rows, ["model", "layers_computed"])
    assert hrm_text.unsolved_rungs(rows.drop(columns="exact_acc_level_hard"), ["model"]) == ""


def test_act_text_follows_the_rows():
    text = hrm_text.act_text(act_rows((0.5, 0.6), (0.49, 0.3), (1.4, 1.8), 0.2))
    assert "at $M_\\max = 2$ ACT trains with 1.40 segments per puzzle (70% of $M_\\max$) and is level with fixed $M = 2$" in text
    assert "at $M_\\max = 4$ ACT trains with 1.80 segments per puzzle (45% of $M_\\max$) and is behind fixed $M = 4$" in text
    assert "the model trained at $M_\\max = 2$ goes from 49.0% after 2 segments to 69.0% after 8 (a gain" in text
    assert "Q-head at test time as well, the $M_\\max = 2$ model uses 1.40 segments and solves 49.0%" in text
    assert "(a loss" in hrm_text.act_text(act_rows((0.5, 0.6), (0.5, 0.6), (1.4, 1.8), -0.2))
    assert hrm_text.act_text(act_rows((0.5, 0.6), (0.5, 0.6), (1.4, 1.8), 0.2).iloc[:0]) == ""


def test_fixed_m_across_m_max_is_set_beside_the_paper():
    """The committed rows' pattern: fixed M = 4 below fixed M = 2 where the paper's fixed M gains; the text says so
    and names the likely cause (half as many puzzles in as many steps) as unverified."""
    text = hrm_text.act_text(act_rows((0.10, 0.046), (0.107, 0.053), (1.74, 3.66), 0.0), paper_fixed={2: 92.4, 4: 97.4})
    assert "Fixed $M = 4$ solves 4.6%, below fixed $M = 2$ (10.0%, noise ±" in text
    assert "the paper's fixed $M$ gains with more segments (92.4% to 97.4%)" in text
    assert "trains on half as many puzzles as $M = 2$: a likely cause, which these rows do not isolate" in text
    level = hrm_text.act_text(act_rows((0.10, 0.11), (0.107, 0.053), (1.74, 3.66), 0.0))
    assert "Fixed $M = 4$ solves 11.0%, level with fixed $M = 2$" in level and "likely cause" not in level
    rows = act_rows((0.10, 0.046), (0.107, 0.053), (1.74, 3.66), 0.0)
    one = hrm_text.act_text(rows[rows["halt_max_steps"] == 2])  # one M_max: nothing to set fixed M against
    assert one.count("With ACT") == 1 and "Fixed $M" not in one


def test_act_text_with_the_act_runs_only():
    rows = act_rows((0.5, 0.6), (0.49, 0.3), (1.4, 1.8), 0.2)
    text = hrm_text.act_text(rows[rows["act"] == True])  # noqa: E712  the fixed-M runs not yet made
    assert "at $M_\\max = 2$ HRM trains with 1.40 segments per puzzle (70% of $M_\\max$)" in text
    assert "fixed-M runs to compare with are not in this edition" in text
    assert "the model trained at $M_\\max = 4$ goes from 30.0% after 4 segments to 50.0% after 8" in text
    assert hrm.inference_scaling(rows[rows["act"] == True]).verdict == "reproduced"  # noqa: E712


def test_layers_computed_text_names_the_gpu_grid():
    from potlib.sweep import grid_frame

    text = hrm_text.layers_computed_text(layers((0.3, 0.5, 0.7), (0.2, 0.3, 0.4), 0.9).assign(halt_max_steps=1),
                                         grid_frame("hrm_layers_computed", "gpu"))
    assert "Transformers of 4-32 layers, a 4-block stack looped to 8-64 layers computed and HRM at" in text


def test_act_text_names_the_gpu_grid():
    from potlib.sweep import grid_frame

    text = hrm_text.act_text(act_rows((0.5, 0.6), (0.49, 0.3), (1.4, 1.8), 0.2), grid_frame("hrm_act", "gpu"))
    assert "The `gpu` grid trains fixed $M$ and ACT at $M_\\max$ = 2, 4, 8 at $d = 256$" in text
    assert "evaluated with up to 16 segments" in text


def choices(soft_w, stable_w, soft_a, stable_a):
    return frame({"loss_type": "softmax", "optimizer": "adamw", "exact_accuracy": soft_w},
                 {"loss_type": "stablemax", "optimizer": "adamw", "exact_accuracy": stable_w},
                 {"loss_type": "softmax", "optimizer": "adam_atan2", "exact_accuracy": soft_a},
                 {"loss_type": "stablemax", "optimizer": "adam_atan2", "exact_accuracy": stable_a})


def test_original_choices_text_follows_the_rows():
    level = hrm_text.original_choices_text(choices(0.10, 0.11, 0.10, 0.09))
    assert "Stablemax instead of softmax changes exact accuracy by +1.0 points with AdamW (11.0% vs 10.0%" in level
    assert "Adam-atan2 instead of AdamW: +0.0 points with softmax" in level
    assert "The original's pair (stablemax, Adam-atan2) is level with ours (softmax, AdamW): 9.0% vs 10.0%" in level
    assert "Neither choice moves exact accuracy beyond the noise" in level
    moved = hrm_text.original_choices_text(choices(0.10, 0.30, 0.10, 0.30))
    assert "Stablemax moves exact accuracy beyond the noise whatever the other choice" in moved and "is ahead of ours" in moved
    once = hrm_text.original_choices_text(choices(0.083, 0.129, 0.114, 0.103))  # the committed rows' pattern
    assert "Stablemax moves exact accuracy beyond the noise with AdamW only, and the other way with the other" in once
    assert "Neither choice" not in once and "Adam-atan2 moves" not in once
    assert hrm_text.original_choices_text(choices(0.1, 0.1, 0.1, 0.1).iloc[:3]) == ""  # a pair not yet run


def test_reset_text_reads_the_residuals():
    # z_H updated after steps 2 and 4: z_L's update jumps at step 3 and 5 and the trace ends at 1e-3 of the first
    text = hrm_text.reset_text([1.0, 0.1, 0.3, 0.01, 0.02, 0.001], [2, 4, 6])
    assert "grows again right after 2 of the 2 $z_H$ updates" in text and "reset pattern" in text
    assert "(by a factor of 2.00 to 3.00)" in text and "weak form" not in text  # 0.3/0.1 and 0.02/0.01
    weak = hrm_text.reset_text([1.0, 0.1, 0.11, 0.01, 0.0102, 0.001], [2, 4, 6])
    assert "reset pattern of the paper's Fig. 3, in a weak form (median jump 1.06×)" in weak
    assert "falls to 0.001 of its first" in text and "do not keep the computation active" in text
    flat = hrm_text.reset_text([1.0, 0.9, 0.8, 0.9, 0.8, 0.7], [2, 4])
    assert "right after 0 of the 2" in flat and "reset pattern" not in flat and "stays active" in flat
    assert hrm_text.reset_text([1.0], [2]) == ""
