"""Theory check of last-iterate gradients (SPEC 3.1): controlled contractive map and PoH block."""

from __future__ import annotations

import pytest
import torch

from potlib.config import ConfigError
from potlib.experiments.gradient_modes_theory import (
    PROFILES,
    TheoryConfig,
    block_gradient_gap,
    controlled_gap,
    jacobian_spectral_norm,
)
from potlib.models.poh import PoHBlock



SMALL = TheoryConfig(d=16, d_s=4, batch=32, power_iters=30)


def test_T1_gives_identical_gradients():
    m = controlled_gap(SMALL.replace(T=1))
    assert m["rel_err"] == 0.0 and m["cos"] == pytest.approx(1.0)


def test_gap_grows_with_gamma_and_gamma_is_bounded():
    errs = []
    for gamma in (0.1, 0.5, 0.9):
        m = controlled_gap(SMALL.replace(gamma=gamma, T=5))
        errs.append(m["rel_err"])
        assert 0 < m["gamma_measured_mean"] <= m["gamma_measured_max"] <= gamma + 1e-4
        assert m["gamma_spectral_W"] == pytest.approx(gamma, rel=1e-4)
        assert -1 <= m["cos"] <= 1
    assert errs[0] < errs[1] < errs[2]


def test_power_iteration_matches_svd():
    gen = torch.Generator().manual_seed(0)
    A = torch.randn(3, 6, 6, generator=gen)  # three samples, a linear map each
    x = torch.randn(3, 6, generator=gen)
    sig = jacobian_spectral_norm(lambda z: torch.einsum("bij,bj->bi", A, z), x, iters=200, generator=gen)
    torch.testing.assert_close(sig, torch.linalg.matrix_norm(A, ord=2), rtol=1e-3, atol=1e-4)


def test_block_gap_matches_block_gradient_modes():
    torch.manual_seed(0)
    blk = PoHBlock(32, 8, 64, max_inner_iters=3, grad_mode="last_nograd")
    x = torch.randn(2, 5, 32)
    g = torch.randn(2, 5, 32)
    loss = lambda y: (y * g).sum()  # noqa: E731
    m1 = block_gradient_gap(blk, x, 1, loss, power_iters=5)
    assert m1["rel_err"] == pytest.approx(0.0, abs=1e-6)
    m3 = block_gradient_gap(blk, x, 3, loss, power_iters=20)
    # the function's two gradients are the block's own full and last_nograd gradients
    params = list(blk.parameters())
    last = torch.autograd.grad(loss(blk(x)[0]), params, allow_unused=True)
    blk.grad_mode = "full"
    full = torch.autograd.grad(loss(blk(x)[0]), params, allow_unused=True)

    def flat(gs):
        return torch.cat([(t if t is not None else torch.zeros_like(p)).flatten() for t, p in zip(gs, params)])

    gf, gl = flat(full), flat(last)
    assert m3["rel_err"] == pytest.approx(float((gf - gl).norm() / gf.norm()), rel=1e-4)
    assert m3["grad_full_norm"] == pytest.approx(float(gf.norm()), rel=1e-5)
    assert m3["gamma_measured_max"] > 0 and all(p.grad is None for p in params)
    assert blk.training  # restored


def test_config_validation_and_profiles():
    with pytest.raises(ConfigError, match="gamma"):
        TheoryConfig(gamma=0.0)
    with pytest.raises(ConfigError, match="T"):
        TheoryConfig(T=0)
    assert len(PROFILES["cpu"]()) == 3 * 7 * 12


def test_smoke_sweep_writes_rows(tmp_path):
    from potlib.results import ResultStore
    from potlib.sweep import run_sweep

    rep = run_sweep("gradient_modes_theory", "smoke", root=tmp_path, progress=False)
    assert rep.statuses == {"ok": rep.expected}
    df = ResultStore(tmp_path).frame("gradient_modes_theory")
    assert len(df) == rep.expected and set(df["status"]) == {"ok"}


def test_a_sweep_runs_the_theory_check_on_one_thread(tmp_path, monkeypatch):
    """Its tensors are tiny, so each run computes on one thread whatever its process holds (the experiment's
    ``cpu_threads``, set by ``run_one``), and its row says so."""
    import potlib.experiments.gradient_modes_theory as theory
    from potlib.executors import run_one
    from potlib.runtime import torch_threads

    seen = []
    controlled = theory.controlled_gap
    monkeypatch.setattr(theory, "controlled_gap", lambda cfg: seen.append(torch.get_num_threads()) or controlled(cfg))
    with torch_threads(2):
        row = run_one("gradient_modes_theory", PROFILES["smoke"]()[0], "smoke", tmp_path, torch.device("cpu"))
        assert torch.get_num_threads() == 2  # the process's count is given back
    assert row["status"] == "ok", row["error"]
    assert seen == [1] and row["provenance"]["device"].endswith(", 1 thread)")
