"""Credit assignment (SPEC 3.3): surrogate = backprop, metric calibration, rules, teacher, experiments."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from potlib.config import ConfigError
from potlib.credit.metrics import credit_metrics, gamma_per_layer, pearson
from potlib.credit.rules import (
    METHODS,
    S_TYPES,
    CreditBridge,
    CreditRule,
    VectorField,
    local_surrogate,
    make_rule,
    normalise_credit,
    terminal_pass,
)
from potlib.credit.teacher import make_ladder, phi
from potlib.credit.train import CreditConfig, train
from potlib.models.resmlp import ResMLP, true_state_grads
from potlib.provenance import REPO_ROOT

D, L, C, B = 16, 3, 5, 32


def _setup(seed=0, n=B):
    torch.manual_seed(seed)
    model = ResMLP(12, D, L, C)
    x = torch.randn(n, 12)
    y = torch.randint(0, C, (n,))
    return model, x, y


def _pass(model, x, y):
    hs, fs = model.local_forward(x)
    p, ce = terminal_pass(model, x, y, hs)
    return p, ce, hs, fs


@pytest.mark.parametrize("norm", ["none", "rms"])
def test_surrogate_with_bp_credit_is_backprop(norm):
    """J_θᵀ a_l with a_l = ∂CE/∂h_l reproduces loss.backward() for every parameter (up to RMS scale)."""
    model, x, y = _setup()
    F.cross_entropy(model(x), y).backward()
    true = {k: v.grad.clone() for k, v in model.named_parameters()}
    model.zero_grad()
    p, ce, hs, fs = _pass(model, x, y)
    raw = make_rule("BP", d=D, n_layers=L, n_classes=C).credit(model, p)
    a = normalise_credit(raw, norm)
    (ce.mean() + local_surrogate(hs[0], fs, a)).backward()
    scale = (raw.pow(2).mean(dim=(1, 2)).sqrt() + 1e-6) if norm == "rms" else torch.ones(L + 1)
    for k, v in model.named_parameters():
        if k.startswith("embed"):
            s = scale[0]
        elif k.startswith("blocks."):
            s = scale[int(k.split(".")[1]) + 1]
        else:
            s = torch.tensor(1.0)  # head and final norm: plain CE
        torch.testing.assert_close(v.grad * s, true[k], rtol=1e-4, atol=1e-6, msg=k)


def test_local_surrogate_reaches_only_its_block():
    model, x, y = _setup()
    _, _, hs, fs = _pass(model, x, y)
    a = torch.zeros(L + 1, B, D)
    a[2] = torch.randn(B, D)  # credit only for block 2
    local_surrogate(hs[0], fs, a).backward()
    for k, v in model.named_parameters():
        has = v.grad is not None and v.grad.abs().sum() > 0
        assert has == k.startswith("blocks.1."), k


def test_bp_calibration_gamma_one_rho_high():
    model, x, y = _setup(n=256)
    m = credit_metrics(model, make_rule("BP", d=D, n_layers=L, n_classes=C), x, y, n_dirs=16,
                       generator=torch.Generator().manual_seed(0))
    assert abs(m["gamma"] - 1.0) < 1e-5
    assert all(abs(g - 1.0) < 1e-5 for g in m["gamma_per_layer"])
    assert m["rho"] > 0.99 and len(m["rho_per_layer"]) == L


class RandomCredit(CreditRule):
    name = "random"

    def credit(self, model, p, progress=1.0):
        return torch.randn(len(p.hs), *p.hs[0].shape, generator=torch.Generator().manual_seed(1))


def test_random_credit_calibration():
    model, x, y = _setup(n=256)
    m = credit_metrics(model, RandomCredit(), x, y, n_dirs=32, generator=torch.Generator().manual_seed(0))
    assert abs(m["rho"]) < 0.05
    assert abs(m["gamma"]) < 0.05


def test_gamma_and_pearson_helpers():
    g = torch.randn(L + 1, 8, D)
    assert torch.allclose(gamma_per_layer(3.0 * g, g), torch.ones(L))
    assert torch.allclose(gamma_per_layer(-g, g), -torch.ones(L))
    u = torch.randn(100)
    assert pearson(u, 2 * u + 1) == pytest.approx(1.0)
    assert pearson(u, torch.zeros(100)) == 0.0


@pytest.mark.parametrize("method", METHODS)
def test_rules_shapes_and_aux_losses(method):
    model, x, y = _setup()
    rule = make_rule(method, d=D, n_layers=L, n_classes=C, width=32)
    p, *_ = _pass(model, x, y)
    a = rule.credit(model, p, progress=1.0)
    assert a.shape == (L + 1, B, D) and torch.isfinite(a).all() and not a.requires_grad
    aux = rule.aux_loss(p, model)
    if method in ("SB", "CB", "VF"):
        aux.backward()
        assert all(q.grad is not None for q in rule.aux_parameters())
        # during the warmup the bridges and the vector field hand out DFA credit
        dfa = make_rule("DFA", d=D, n_layers=L, n_classes=C)
        torch.testing.assert_close(rule.credit(model, p, progress=0.0), dfa.credit(model, p))
    else:
        assert aux is None and rule.aux_parameters() == []


@pytest.mark.parametrize("s_type", S_TYPES)
def test_credit_bridge_conditioning_variants(s_type):
    model, x, y = _setup()
    rule = make_rule("CB", d=D, n_layers=L, n_classes=C, width=32, s_type=s_type)
    p, *_ = _pass(model, x, y)
    assert rule.credit(model, p).shape == (L + 1, B, D)
    assert torch.isfinite(rule.aux_loss(p, model))


def test_bridge_target_without_noise_is_the_ema_value():
    """σ = 0: all K samples agree and the soft-min −λ log mean exp(−V̄/λ) equals V̄(h_{l+1})."""
    model, x, y = _setup()
    rule = CreditBridge(D, L, C, width=32, sigma=0.0, k=4)
    p, *_ = _pass(model, x, y)
    t, s, _ = rule._inputs(p, range(1, L + 1))
    with torch.no_grad():
        direct = rule.target(torch.cat(p.hs[1:]), t, s, None).squeeze(-1)
    torch.testing.assert_close(rule.bridge_target(p), direct, rtol=1e-5, atol=1e-5)


def test_ema_target_moves_by_one_minus_momentum():
    rule = CreditBridge(D, L, C, width=8, ema=0.9)
    with torch.no_grad():
        for q in rule.value.parameters():
            q.add_(1.0)
    before = [q.clone() for q in rule.target.parameters()]
    rule.after_aux_step()
    for b0, q, v in zip(before, rule.target.parameters(), rule.value.parameters()):
        torch.testing.assert_close(q, b0 + 0.1 * (v - b0))


def test_true_state_grads_match_finite_difference():
    model, x, y = _setup(n=4)
    grads, _ = true_state_grads(model, x, y)
    hs = model.states(x)
    v = torch.randn(4, D).double()
    model.double()
    h = hs[2].detach().double()
    eps = 1e-6
    fd = (model.loss_from(2, h + eps * v, y) - model.loss_from(2, h - eps * v, y)) / (2 * eps)
    torch.testing.assert_close(fd.float(), (grads[2] * v.float()).sum(-1), rtol=1e-3, atol=1e-5)


def test_teacher_is_fixed_and_balanced():
    a = make_ladder(1.0, 2, d=16, n_classes=10, n_train=400, n_test=200, seed=3)
    b = make_ladder(1.0, 2, d=16, n_classes=10, n_train=400, n_test=200, seed=3)
    c = make_ladder(0.5, 2, d=16, n_classes=10, n_train=400, n_test=200, seed=3)
    assert a[4]["sha256"] == b[4]["sha256"] != c[4]["sha256"]
    assert torch.equal(a[0], c[0])  # same inputs, different teacher
    assert a[4]["majority_frac"] < 0.3 and len(torch.unique(a[1])) == 10
    assert torch.allclose(phi(torch.tensor([0.5]), 0.0), torch.tensor([0.5]))
    with pytest.raises(ValueError, match="alpha"):
        make_ladder(1.5, 2)


def test_config_validation_names_field():
    with pytest.raises(ConfigError, match="method"):
        CreditConfig(method="FA")
    with pytest.raises(ConfigError, match="wr"):
        CreditConfig(wr=1.5)
    from potlib.experiments.credit_ladder import LadderConfig

    with pytest.raises(ConfigError, match="alpha"):
        LadderConfig(alpha=2.0)


def test_train_loop_learns_with_bp():
    x, y, xt, yt, _ = make_ladder(0.0, 2, d=16, n_train=512, n_test=256, seed=0)
    torch.manual_seed(0)
    cfg = CreditConfig(method="BP", n_layers=2, d=16, epochs=4, lr=1e-2, batch_size=64, metric_samples=64, metric_dirs=4)
    r = train(cfg, (x, y, xt, yt), "cpu")
    assert r.metrics["test_acc"] > 0.3  # linear teacher, 10 classes: chance is ~0.1
    assert len(r.artifacts["epoch_train_loss"]) == 4
    assert r.artifacts["epoch_train_loss"][-1] < r.artifacts["epoch_train_loss"][0]
    assert r.metrics["gamma"] == pytest.approx(1.0, abs=1e-5)


def test_gpu_grids_have_the_documented_sizes():
    from potlib import experiments

    assert len(experiments.get("credit_ladder").configs("gpu")) == 4 * 4 * 4 * 3
    assert len(experiments.get("credit_cifar").configs("gpu")) == 5 * 4
    assert len(experiments.get("credit_ablations").configs("gpu")) == 13 * 3


def test_cpu_grids_have_the_documented_sizes_and_budgets():
    from potlib import experiments

    sizes = {"credit_ladder": (192, {20}), "credit_ablations": (39, {20}), "credit_memo_budget": (18, {80}),
             "credit_vector_field": (12, {20}), "credit_collapse": (14, {20}), "credit_cifar": (20, {10})}
    for name, (n, epochs) in sizes.items():
        configs = experiments.get(name).configs("cpu")
        assert len(configs) == n and {c.epochs for c in configs} == epochs, name


def test_credit_is_used_at_its_own_scale_by_default():
    """The reading consistent with the memo's numbers (credit_collapse); RMS stays a named option."""
    assert CreditConfig().credit_norm == "none"
    a = torch.randn(L + 1, B, D)
    assert normalise_credit(a, "none") is a
    with pytest.raises(ValueError, match="credit_norm"):
        normalise_credit(a, "l2")


def test_vector_field_targets_are_backprop_when_the_field_is_exact():
    """If the target field returned the true ∂CE/∂h_{l+1}, the one-block targets are the true ∂CE/∂h_l."""
    model, x, y = _setup()
    rule = VectorField(D, L, C, width=16)
    p, *_ = _pass(model, x, y)
    grads, _ = true_state_grads(model, x, y)
    true = torch.stack(grads)  # (L+1, B, D), per-sample ∂CE_i/∂h_l

    class Exact(torch.nn.Module):  # stands in for the EMA field ā on layers 1..L (stacked layer-major)
        def forward(self, h, t, s, h_last):
            return true[1:].reshape(L * B, D)

    rule.target = Exact()
    torch.testing.assert_close(rule.targets(p, model), true, rtol=1e-4, atol=1e-6)
    assert rule.credit(model, p).abs().max() == 0  # zero-initialised output: no credit before it learns


def _check_rows(root: Path, name: str):
    from potlib.results import ResultStore

    store = ResultStore(root)
    rows = store.rows(name)
    assert rows and all(r["status"] == "ok" for r in rows), [r["error"] for r in rows]
    for r in rows:
        for k in ("test_acc", "gamma", "rho", "train_loss", "test_loss", "gamma_per_layer", "rho_per_layer"):
            assert k in r["metrics"]
        art = store.artifacts(name, r["cfg_id"])
        assert {"epoch_train_loss", "epoch_test_acc", "gamma_per_layer", "rho_per_layer"} <= set(art)
    return rows


@pytest.mark.parametrize("name, n", [("credit_ladder", 4), ("credit_ablations", 4), ("credit_memo_budget", 6),
                                     ("credit_vector_field", 1), ("credit_collapse", 3)])
def test_smoke_profile_end_to_end(name, n, tmp_path):
    from potlib.sweep import run_sweep

    report = run_sweep(name, "smoke", root=tmp_path, progress=False)
    assert report.failed == 0
    rows = _check_rows(tmp_path, name)
    assert len(rows) == n
    assert all(r["provenance"]["dataset_sha256"] for r in rows)


def test_cifar_code_path_on_fake_data():
    from potlib.experiments.credit_cifar import SMOKE_BASE, run

    out = run(SMOKE_BASE.replace(dataset="fake", method="CB"), torch.device("cpu"))
    assert out.dataset.startswith("fake") and np.isfinite(out.metrics["gamma"])
    assert out.artifacts["rho_per_layer"].shape == (SMOKE_BASE.n_layers,)


def _cifar_available() -> str | None:
    shared = REPO_ROOT.parent / "shared" / "datasets"  # the checkout's sibling shared/ folder, as in CI
    root = os.environ.get("POTLIB_DATA") or (str(shared) if shared.is_dir() else None)
    if root is None or not (Path(root) / "cifar10_jpeg_q75.tar.gz").exists() and not (Path(root) / "cifar-10-batches-py").exists():
        return None
    return root


@pytest.mark.skipif(_cifar_available() is None, reason="CIFAR-10 not found: set POTLIB_DATA to the data root")
def test_cifar_smoke_profile_end_to_end(tmp_path, monkeypatch):
    from potlib.sweep import run_sweep

    monkeypatch.setenv("POTLIB_DATA", _cifar_available())
    report = run_sweep("credit_cifar", "smoke", root=tmp_path, progress=False)
    assert report.failed == 0
    rows = _check_rows(tmp_path, "credit_cifar")
    assert all(r["provenance"]["dataset"].startswith("CIFAR-10") for r in rows)


@pytest.mark.parametrize("method", ["SB", "CB", "VF"])
def test_bridges_learn_true_credit_on_a_frozen_network(method):
    """With the forward net fixed, the bridge's own losses drive Γ from ~0 to well above DFA levels."""
    model, x, y = _setup(n=512)
    model.requires_grad_(False)
    rule = make_rule(method, d=D, n_layers=L, n_classes=C, width=64, wr=0.0)
    opt = torch.optim.Adam(rule.aux_parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    before = credit_metrics(model, rule, x[:128], y[:128], with_rho=False)["gamma"]
    for _ in range(300):
        idx = torch.randint(0, 512, (64,), generator=gen)
        with torch.no_grad():
            hs = model.states(x[idx])
        p, _ = terminal_pass(model, x[idx], y[idx], hs)
        loss = rule.aux_loss(p, model)
        opt.zero_grad()
        loss.backward()
        opt.step()
        rule.after_aux_step()
    after = credit_metrics(model, rule, x[:128], y[:128], with_rho=False)["gamma"]
    assert abs(before) < 0.2 and after > 0.6, (before, after)
