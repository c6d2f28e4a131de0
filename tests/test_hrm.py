"""Tests of the HRM chapter: blocks, the one-step gradient, ACT halting, metrics and the experiments."""

from __future__ import annotations

import importlib.util
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from potlib.config import ConfigError
from potlib.hrm_train import (
    HRMTrainConfig,
    act_halting,
    load_data,
    synthetic_split,
)
from potlib.models.hrm import (
    SudokuModelConfig,
    HRM,
    HRMACT,
    HRMCarry,
    act_loss,
    correctness,
    sequence_loss,
    stablemax_cross_entropy,
)
from potlib.models.hrm_blocks import (
    HRMBlock,
    RotaryEmbedding,
    TokenEmbedding,
    apply_rotary,
    rms_norm,
    trunc_normal_init_,
)
from potlib.provenance import REPO_ROOT


def tiny_hrm(**kw) -> HRM:
    torch.manual_seed(0)
    args = dict(hidden_size=16, num_heads=2, expansion=2.0, H_layers=1, L_layers=1, H_cycles=2, L_cycles=3, multiple_of=8)
    args.update(kw)
    return HRM(SudokuModelConfig(**args))


def puzzles(n: int = 4, seed: int = 0):
    x, y, _, _ = synthetic_split(n, 1, 0, seed, blanks=40)
    return x, y


# ------------------------------------------------------------------------------------------ blocks


def test_rope_is_a_rotation():
    torch.manual_seed(0)
    rope = RotaryEmbedding(head_dim=8, max_len=16)
    x = torch.randn(3, 16, 2, 8)  # (B, T, H, Dh)
    rx = apply_rotary(x, *rope())
    torch.testing.assert_close(rx.norm(dim=-1), x.norm(dim=-1))  # norm-preserving
    torch.testing.assert_close(rx[:, 0], x[:, 0])  # position 0 is the identity
    # q.k after rotation depends only on the offset: same vectors at (i, j) and (i+s, j+s).
    q, k = torch.randn(8), torch.randn(8)
    seq_q, seq_k = q.expand(1, 16, 1, 8), k.expand(1, 16, 1, 8)
    rq, rk = apply_rotary(seq_q, *rope())[0, :, 0], apply_rotary(seq_k, *rope())[0, :, 0]
    torch.testing.assert_close(rq[2] @ rk[5], rq[9] @ rk[12], rtol=1e-5, atol=1e-5)


def test_trunc_normal_has_the_asked_std():
    t = trunc_normal_init_(torch.empty(200_000), std=0.5)
    assert abs(float(t.std()) - 0.5) < 0.005
    assert float(t.abs().max()) <= 2 * 0.5 / 0.87  # cut at 2 sigma of the unscaled normal


def test_block_is_post_norm_without_biases():
    torch.manual_seed(0)
    block = HRMBlock(16, 2, expansion=2.0, multiple_of=8)
    out = block(torch.randn(2, 5, 16) * 7, RotaryEmbedding(8, 5)())
    rms = out.pow(2).mean(-1).sqrt()
    torch.testing.assert_close(rms, torch.ones_like(rms), rtol=1e-3, atol=1e-3)  # weightless RMSNorm last
    assert not any("bias" in n for n, _ in block.named_parameters())
    assert not any(p.dim() == 1 for p in block.parameters())  # no norm gains either
    torch.testing.assert_close(rms_norm(torch.full((1, 4), 3.0)), torch.ones(1, 4), rtol=1e-4, atol=1e-4)


def test_embedding_scaled_by_sqrt_d():
    torch.manual_seed(0)
    emb = TokenEmbedding(11, 64, prefix_len=1)
    tokens = torch.randint(0, 11, (2, 81))
    out = emb(tokens)
    assert out.shape == (2, 82, 64)
    assert torch.all(out[:, 0] == 0)  # zero-initialised prefix
    torch.testing.assert_close(out[:, 1:], 8.0 * emb.weight[tokens])
    assert abs(float(emb.weight.detach().std()) * 8 - 1.0) < 0.15  # std 1/sqrt(d), times sqrt(d) -> ~1


# ----------------------------------------------------------------------------------------- HRM


def test_hrm_shapes_and_detached_carry():
    hrm = tiny_hrm()
    x, _ = puzzles(3)
    carry = hrm.initial_carry(3)
    assert carry.z_H.shape == (3, 82, 16)
    new, logits, (qh, qc) = hrm(carry, x)
    assert logits.shape == (3, 81, 11) and qh.shape == (3,) and qc.shape == (3,)
    assert not new.z_H.requires_grad and not new.z_L.requires_grad
    assert hrm.layers_per_segment == 2 * (3 * 1 + 1)


def test_one_step_gradient_equals_truncated_computation():
    """One-step grads == full-graph grads of a 1x1-cycle model started from the pre-final state."""
    hrm = tiny_hrm(grad_mode="one_step")
    x, y = puzzles(4)
    carry = hrm.initial_carry(4)
    _, logits, _ = hrm(carry, x)
    sequence_loss(logits, y).mean().backward()
    g_one = {n: p.grad.clone() for n, p in hrm.named_parameters() if p.grad is not None}

    # Truncated computation by hand: every update but the last L and H, without any graph ...
    with torch.no_grad():
        cs, emb = hrm.rotary(), hrm.embed(x)
        z_H, z_L = carry.z_H, carry.z_L
        steps = [(h, l) for h in range(hrm.H_cycles) for l in range(hrm.L_cycles)]
        for h, l in steps[:-1]:
            z_L = hrm.L_level(z_L, z_H + emb, cs)
            if l == hrm.L_cycles - 1:
                z_H = hrm.H_level(z_H, z_L, cs)
    # ... then a model with one L and one H update, full backprop, from that state.
    ref = tiny_hrm(H_cycles=1, L_cycles=1, grad_mode="bptt")
    ref.load_state_dict(hrm.state_dict())
    _, logits_ref, _ = ref(HRMCarry(z_H.clone(), z_L.clone()), x)
    torch.testing.assert_close(logits_ref, logits)
    sequence_loss(logits_ref, y).mean().backward()
    g_ref = {n: p.grad for n, p in ref.named_parameters() if p.grad is not None}
    assert g_one.keys() == g_ref.keys()
    for n in g_one:
        torch.testing.assert_close(g_one[n], g_ref[n], rtol=1e-5, atol=1e-6, msg=n)

    # BPTT through all steps gives a different gradient on the same forward.
    bptt = tiny_hrm(grad_mode="bptt")
    bptt.load_state_dict(hrm.state_dict())
    _, logits_b, _ = bptt(bptt.initial_carry(4), x)
    torch.testing.assert_close(logits_b, logits)
    sequence_loss(logits_b, y).mean().backward()
    diff = sum(float((p.grad - g_one[n]).abs().sum()) for n, p in bptt.named_parameters() if n in g_one)
    assert diff > 1e-6


def test_one_step_asserts_carry_has_no_graph():
    hrm = tiny_hrm(H_cycles=1, L_cycles=1)
    x, _ = puzzles(2)
    carry = hrm.initial_carry(2)
    leaky = HRMCarry(carry.z_H.clone().requires_grad_(), carry.z_L.clone().requires_grad_())
    with pytest.raises(AssertionError, match="graph"):
        hrm(leaky, x)


def test_one_step_uses_less_memory_than_bptt():
    from potlib.memory import peak_of

    x, y = puzzles(2)
    peaks = {}
    for mode in ("one_step", "bptt"):
        hrm = tiny_hrm(grad_mode=mode, H_cycles=2, L_cycles=3)
        peaks[mode] = peak_of(lambda: sequence_loss(hrm(hrm.initial_carry(2), x)[1], y).mean().backward(), "cpu", (hrm,)).bytes
    assert peaks["bptt"] > 2 * peaks["one_step"]


# ----------------------------------------------------------------------------------------- ACT


def act_model(q_bias, M=3, p=0.0, act=True) -> HRMACT:
    torch.manual_seed(0)
    model = HRMACT(SudokuModelConfig(hidden_size=16, num_heads=2, expansion=2.0, H_layers=1, L_layers=1, H_cycles=1,
                                     L_cycles=1, multiple_of=8, halt_max_steps=M, halt_exploration_prob=p, act=act))
    with torch.no_grad():
        model.hrm.q_head.bias.copy_(torch.tensor(q_bias))  # q_head weight is zero at init: q = bias
    return model


def run_segments(model, n_seg, B=6):
    x, y = puzzles(B)
    state = model.initial_state(x, y)
    halted, outs = [], []
    for _ in range(n_seg):
        state, out = model(state, x, y)
        halted.append(state.halted.clone())
        outs.append(out)
    return torch.stack(halted), outs, state


def test_act_halts_when_q_halt_wins_and_at_max_steps():
    halted, outs, _ = run_segments(act_model([5.0, -5.0]).train(), 1)
    assert halted[0].all()  # q_halt > q_continue, M_min = 1: halt after one segment
    halted, _, _ = run_segments(act_model([-5.0, 5.0]).train(), 3)
    assert not halted[:2].any() and halted[2].all()  # continue until M_max = 3
    halted, _, _ = run_segments(act_model([5.0, -5.0]).eval(), 3)
    assert not halted[:2].any() and halted[2].all()  # evaluation always runs M_max
    halted, _, _ = run_segments(act_model([5.0, -5.0], act=False).train(), 3)
    assert not halted[:2].any() and halted[2].all()  # fixed M


def test_act_exploration_forces_at_least_two_segments():
    torch.manual_seed(0)
    halted, _, _ = run_segments(act_model([5.0, -5.0], M=4, p=1.0).train(), 4, B=64)
    assert not halted[0].any()  # M_min >= 2 for every row
    assert halted[1].any() and not halted[1].all()  # M_min = 2 for about a third of rows
    first = halted.float().argmax(0) + 1
    assert set(first.tolist()) <= {2, 3, 4}


def test_act_q_targets():
    b = [0.3, 1.2]
    _, outs, _ = run_segments(act_model(b, M=2).train(), 2)
    # step 1: sigmoid(max(next q_halt, next q_continue)); step 2 is the last: sigmoid(next q_halt)
    torch.testing.assert_close(outs[0]["target_q_continue"], torch.full((6,), 1 / (1 + math.exp(-1.2))))
    torch.testing.assert_close(outs[1]["target_q_continue"], torch.full((6,), 1 / (1 + math.exp(-0.3))))
    _, outs, _ = run_segments(act_model(b, M=2).eval(), 1)
    assert "target_q_continue" not in outs[0]


def test_act_replaces_only_halted_rows():
    model = act_model([-5.0, 5.0], M=2).train()
    x, y = puzzles(4, seed=1)
    x2, y2 = puzzles(4, seed=2)
    state = model.initial_state(x, y)
    state, _ = model(state, x, y)
    assert not state.halted.any()
    state, _ = model(state, x2, y2)  # nobody halted: rows keep their puzzles
    assert torch.equal(state.inputs, x) and torch.equal(state.steps, torch.full((4,), 2))
    state.halted = torch.tensor([True, False, True, False])
    carry_before = state.carry.z_H.clone()
    state3, _ = model(state, x2, y2)
    assert torch.equal(state3.inputs[0], x2[0]) and torch.equal(state3.inputs[1], x[1])
    assert state3.steps.tolist() == [1, 3, 1, 3]
    reset = model.hrm.reset_carry(state.halted, state.carry)
    assert torch.equal(reset.z_H[0, 0], model.hrm.H_init) and torch.equal(reset.z_H[1], carry_before[1])


def test_act_loss_formula():
    torch.manual_seed(0)
    logits = torch.randn(3, 81, 11)
    labels = torch.randint(2, 11, (3, 81))
    labels[0] = logits[0].argmax(-1)  # row 0 solved
    out = {"logits": logits, "q_halt_logits": torch.randn(3), "q_continue_logits": torch.randn(3),
           "target_q_continue": torch.rand(3)}
    loss, solved = act_loss(out, labels)
    assert solved.tolist() == [True, False, False]
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    ce = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels, reduction="none").mean(1)
    want = (ce + 0.5 * (bce(out["q_halt_logits"], solved.float(), reduction="none")
                        + bce(out["q_continue_logits"], out["target_q_continue"], reduction="none"))).mean()
    torch.testing.assert_close(loss, want)


def test_act_halting_metric():
    solved = np.array([[0, 0], [1, 0], [1, 1]], dtype=bool)  # (S=3, N=2)
    halt = np.array([[0, 0], [1, 0], [0, 0]], dtype=bool)
    assert act_halting(solved, halt, 3) == (1.0, 2.5)  # puzzle 0 halts at 2, puzzle 1 at the cap 3
    assert act_halting(solved, halt, 1) == (0.0, 1.0)


# ------------------------------------------------------------------------------- masking, losses


def test_masking_of_ignored_cells():
    logits = torch.zeros(2, 81, 11)
    logits[..., 2] = 5.0  # predicts digit token 2 everywhere
    labels = torch.full((2, 81), 2)
    labels[0, :10] = 7
    masked = labels.clone()
    masked[0, :10] = -100
    solved, cell = correctness(logits, masked)
    assert solved.tolist() == [True, True] and torch.allclose(cell, torch.ones(2))
    solved, cell = correctness(logits, labels)
    assert solved.tolist() == [False, True] and abs(float(cell[0]) - 71 / 81) < 1e-6
    l_masked = sequence_loss(logits, masked)
    torch.testing.assert_close(l_masked[0], l_masked[1])  # ignored cells neither count nor dilute
    assert float(stablemax_cross_entropy(logits, masked)[0, :10].abs().sum()) == 0.0


def test_stablemax_formula():
    logits = torch.tensor([[[1.0, -1.0, 0.0]]])
    s = torch.tensor([2.0, 0.5, 1.0])
    want = -torch.log(s[0] / s.sum())
    torch.testing.assert_close(stablemax_cross_entropy(logits, torch.tensor([[0]]))[0, 0], want.float())


# ----------------------------------------------------------------------------------------- data


def _valid(sol: np.ndarray) -> bool:
    g = sol.reshape(9, 9)
    boxes = g.reshape(3, 3, 3, 3).transpose(0, 2, 1, 3).reshape(9, 9)
    return all(sorted(a) == list(range(1, 10)) for m in (g, g.T, boxes) for a in m)


def test_synthetic_puzzles_are_valid():
    tx, ty, vx, vy = synthetic_split(5, 3, 4, seed=0, blanks=30)
    assert tx.shape == (5 * (1 + 4), 81) and vx.shape == (3, 81) and tx.dtype == torch.int64
    for q, s in zip(torch.cat([tx, vx]).numpy(), torch.cat([ty, vy]).numpy()):
        assert _valid(s - 1)
        given = q > 1
        assert (q[given] == s[given]).all() and (q == 1).sum() == 30 and set(np.unique(s)) <= set(range(2, 11))


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="grad_mode"):
        HRMTrainConfig(grad_mode="full")
    with pytest.raises(ConfigError, match="hidden_size"):
        HRMTrainConfig(hidden_size=30, num_heads=4)
    with pytest.raises(ConfigError, match="loops"):
        HRMTrainConfig(model="transformer", loops=2)


def test_participation_ratio():
    from potlib.experiments.hrm_dynamics import participation_ratio

    torch.manual_seed(0)
    iso = torch.randn(400, 5) @ torch.linalg.qr(torch.randn(50, 5))[0].T  # isotropic in 5 dims
    assert abs(participation_ratio(iso) - 5) < 0.5
    assert abs(participation_ratio(torch.randn(50, 1) * torch.randn(1, 30)) - 1) < 1e-6


@pytest.mark.parametrize("pr_states", ["final", "all_segments"])
def test_hrm_dynamics_arrays(pr_states):
    from potlib.experiments.hrm_dynamics import DynamicsConfig, hrm_analysis

    cfg = DynamicsConfig(hidden_size=16, num_heads=2, H_cycles=2, L_cycles=3, halt_max_steps=2, n_test=6, n_traj=6,
                         pr_counts=(3, 6), pr_states=pr_states)
    x, _ = puzzles(6)
    metrics, arts = hrm_analysis(cfg, tiny_hrm(), x, torch.device("cpu"), "untrained")
    assert arts["untrained_L_residual"].shape == (2 * 2 * 3,) and arts["untrained_H_residual"].shape == (2 * 2,)
    assert arts["untrained_H_step_index"].tolist() == [3, 6, 9, 12]
    assert arts["untrained_pca_L"].shape == (12, 2) and arts["pr_zH_untrained"].shape == (2,)
    bound = 6 - 1 if pr_states == "final" else 2 * 6 - 1  # rank of the centred sample matrix
    assert 1 <= metrics["pr_zH_untrained"] <= bound + 1e-6 and 1 <= metrics["pr_zL_untrained"] <= bound + 1e-6


_SHARED = REPO_ROOT.parent / "shared" / "datasets"  # the checkout's sibling shared/ folder, as in CI
_DATA = os.environ.get("POTLIB_DATA") or (str(_SHARED) if _SHARED.exists() else None)
_HAS_SUDOKU = importlib.util.find_spec("potlib.data.sudoku") is not None


@pytest.mark.skipif(not (_DATA and _HAS_SUDOKU), reason="needs potlib.data.sudoku and POTLIB_DATA with sudoku_tdoku.tar.gz")
def test_sudoku_split_feeds_the_models(monkeypatch):
    monkeypatch.setenv("POTLIB_DATA", _DATA)
    data = load_data(HRMTrainConfig(n_train=8, n_aug=2, n_test=8))
    assert data.train_x.shape == (8 * 3, 81) and data.test_y.shape == (8, 81)
    assert int(data.train_x.min()) >= 1 and int(data.train_y.max()) <= 10 and data.sha256


@pytest.mark.skipif(not _HAS_SUDOKU, reason="needs potlib.data.sudoku")
def test_metrics_agree_with_the_data_module():
    from potlib.data import sudoku

    torch.manual_seed(1)
    x, y = puzzles(6)
    logits = torch.randn(6, 81, 11)
    logits[:3] += 20 * torch.nn.functional.one_hot(y[:3], 11)  # three solved puzzles
    pred = logits.argmax(-1)
    solved, cell = correctness(logits, y)
    assert float(solved.float().mean()) == sudoku.exact_accuracy(pred, y) == 0.5
    assert abs(float(cell.mean()) - sudoku.cell_accuracy(pred, y)) < 1e-6
    blank = sudoku.blank_accuracy(pred, y, x)
    per = [sudoku.cell_accuracy(pred[i : i + 1], y[i : i + 1], x[i : i + 1]) for i in range(6)]
    np.testing.assert_allclose(blank.numpy(), per, rtol=1e-6)


# ----------------------------------------------------------------------------------- experiments


@pytest.mark.parametrize("name", ["hrm_depth_width", "hrm_layers_computed", "hrm_act", "hrm_dynamics", "hrm_memory",
                                  "hrm_original_choices"])
def test_smoke_profile_writes_ok_rows(name, tmp_path):
    from potlib import experiments
    from potlib.results import ResultStore
    from potlib.sweep import run_sweep

    report = run_sweep(name, "smoke", root=tmp_path, progress=False)
    rows = ResultStore(tmp_path).rows(name)
    assert len(rows) == report.expected and all(r["status"] == "ok" for r in rows), [r["error"] for r in rows]
    assert experiments.get(name).uses_gpu
    assert len(experiments.get(name).configs("gpu")) >= 3


def test_cpu_profiles_use_the_ladder_at_the_documented_sizes():
    """The book's HRM grids: the difficulty ladder at d=64 (hrm_train.cpu_base); memory at the paper's size."""
    from potlib import experiments

    sizes = {"hrm_depth_width": 7, "hrm_layers_computed": 9, "hrm_act": 4, "hrm_dynamics": 3, "hrm_memory": 12,
             "hrm_original_choices": 4}
    for name, n in sizes.items():
        configs = experiments.get(name).configs("cpu")
        assert len(configs) == n, name
        if name == "hrm_memory":
            assert {c.hidden_size for c in configs} == {512} and {c.batch_size for c in configs} == {4}
        else:
            assert {c.data for c in configs} == {"ladder"} and {c.batch_size for c in configs} == {64}, name


def test_adam_atan2_is_a_named_optimizer_option():
    from adam_atan2_pytorch import AdamAtan2

    from potlib.hrm_train import HRMTrainConfig, build_model, make_optimizer, smoke_base

    cfg = HRMTrainConfig(**smoke_base(optimizer="adam_atan2"))
    model = build_model(cfg)
    opt, _ = make_optimizer(cfg, model)
    assert isinstance(opt, AdamAtan2)
    p = next(model.parameters())
    before = p.detach().clone()
    p.grad = torch.ones_like(p)
    opt.step()
    assert not torch.equal(before, p.detach())
    with pytest.raises(ConfigError, match="optimizer"):
        HRMTrainConfig(**smoke_base(optimizer="sgd"))


def test_model_config_names_the_field_out_of_range():
    for bad, msg in ((dict(grad_mode="full"), "grad_mode = 'full'"), (dict(H_cycles=0), "H_cycles = 0"),
                     (dict(hidden_size=30, num_heads=4), "hidden_size = 30"), (dict(halt_exploration_prob=2.0), "halt_exploration_prob")):
        with pytest.raises(ValueError, match=msg):
            SudokuModelConfig(**bad)
