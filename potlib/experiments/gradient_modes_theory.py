"""Theory check of last-iterate gradients: gap to full BPTT against T and the contraction factor.

Backs the theory figure of chapter 3.1 (seed ``000_210321fedb7a455c.txt`` sections 5 and 8, SPEC
section 3.1). The seed claims ||grad_full - grad_last|| = O(gamma^T ||grad_theta F||) for a refinement
map with contraction factor gamma. We measure, on a controlled map whose gamma is set by scaling:

    x_{t+1} = F_theta(x_t, s) = tanh(W x_t + U s + b),   x_0 = 0,   W = gamma * W0 / ||W0||_2
    L = mean_batch 1/2 ||A x_T - y||^2                (A, y fixed; theta = (W, U, b))

- ``rel_err`` = ||grad_full - grad_last|| / ||grad_full|| and ``cos`` = cos(grad_full, grad_last), where
  ``last`` backpropagates through the final step only (x_{T-1} detached);
- ``gamma_measured``: the spectral norm of the step Jacobian J = diag(1 - tanh^2) W at x_{T-1}, by power
  iteration on J^T J per sample (mean and max over the batch); tanh is 1-Lipschitz, so it is <= gamma;
- ``gamma_pow_T`` = gamma^T, the seed's bound, stored beside the measurement for the figure.

:func:`block_gradient_gap` applies the same measurement to a (trained) PoH block; the parser
experiment ``poh_gradient_modes`` calls it on its trained blocks.

Runtime (measured on a busy shared 2-core CPU, one thread): smoke ~1 s; paper grid (7 gammas x 12 T
x 3 seeds = 252 rows) 18 s. ``uses_gpu=False``: the paper rows may come from any CPU.

    python -m potlib run gradient_modes_theory --profile smoke
    python -m potlib run gradient_modes_theory --profile paper
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from potlib.config import Config, grid
from potlib.experiments import Experiment
from potlib.runtime import Outcome


@dataclass(frozen=True)
class TheoryConfig(Config):
    seed: int = 42
    gamma: float = 0.5  # target contraction factor: spectral norm of W
    T: int = 3  # inner iterations
    d: int = 64  # state dimension
    d_s: int = 16  # input (sentence) dimension
    batch: int = 128  # samples s
    n_out: int = 8  # readout dimension of A
    power_iters: int = 50  # power-iteration steps for gamma

    def check(self) -> None:
        self.require(0.0 < self.gamma <= 10.0, "gamma", "a float in (0, 10]")
        self.require(1 <= self.T <= 1000, "T", "an int in [1, 1000]")
        for f in ("d", "d_s", "batch", "n_out", "power_iters"):
            self.require(getattr(self, f) >= 1, f, "an int >= 1")


def _flat(grads, params) -> torch.Tensor:
    return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(grads, params)])


def gap_metrics(g_full: torch.Tensor, g_last: torch.Tensor) -> dict[str, float]:
    nf = g_full.norm()
    return {
        "rel_err": float((g_full - g_last).norm() / nf) if nf > 0 else float("nan"),
        "cos": float(torch.nn.functional.cosine_similarity(g_full, g_last, dim=0)),
        "grad_full_norm": float(nf),
        "grad_last_norm": float(g_last.norm()),
    }


def jacobian_spectral_norm(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, iters: int = 50,
                           batch_dims: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
    """Largest singular value of the Jacobian of ``f`` at ``x``, per sample, by power iteration on J^T J.

    ``f`` maps (B, ...) to (B, ...) sample-wise (its Jacobian is block-diagonal over the first
    ``batch_dims`` dimensions), so each sample's vector is normalised on its own. Returns (B,).
    """
    x = x.detach()
    reduce = tuple(range(batch_dims, x.dim()))
    v = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    v = v / v.norm(dim=reduce, keepdim=True)
    sigma = torch.zeros(x.shape[:batch_dims], device=x.device)
    for _ in range(iters):
        _, jv = torch.func.jvp(f, (x,), (v,))  # J v
        _, vjp = torch.func.vjp(f, x)
        (jtjv,) = vjp(jv)  # J^T J v
        sigma = jv.detach().norm(dim=reduce)
        v = jtjv.detach() / jtjv.norm(dim=reduce, keepdim=True).clamp_min(1e-30)
    return sigma


class ContractiveMap(torch.nn.Module):
    """F_theta(x, s) = tanh(W x + U s + b) with ||W||_2 = gamma (set by scaling)."""

    def __init__(self, d: int, d_s: int, gamma: float, generator: torch.Generator):
        super().__init__()
        W0 = torch.randn(d, d, generator=generator) / d**0.5
        self.W = torch.nn.Parameter(gamma * W0 / torch.linalg.matrix_norm(W0, ord=2))
        self.U = torch.nn.Parameter(torch.randn(d, d_s, generator=generator) / d_s**0.5)
        self.b = torch.nn.Parameter(0.1 * torch.randn(d, generator=generator))

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x @ self.W.T + s @ self.U.T + self.b)  # (B, d)


def controlled_gap(cfg: TheoryConfig) -> dict[str, float]:
    gen = torch.Generator().manual_seed(cfg.seed)
    F = ContractiveMap(cfg.d, cfg.d_s, cfg.gamma, gen)
    s = torch.randn(cfg.batch, cfg.d_s, generator=gen)  # (B, d_s)
    A = torch.randn(cfg.n_out, cfg.d, generator=gen) / cfg.d**0.5
    y = torch.randn(cfg.batch, cfg.n_out, generator=gen)
    params = list(F.parameters())

    def loss(xT):
        return 0.5 * ((xT @ A.T - y) ** 2).sum(-1).mean()

    x = torch.zeros(cfg.batch, cfg.d)
    for _ in range(cfg.T):  # full BPTT: every step stays in the graph
        x = F(x, s)
    g_full = _flat(torch.autograd.grad(loss(x), params), params)
    with torch.no_grad():  # last-iterate: T-1 steps without graph, then one step with
        x_prev = torch.zeros(cfg.batch, cfg.d)
        for _ in range(cfg.T - 1):
            x_prev = F(x_prev, s)
    g_last = _flat(torch.autograd.grad(loss(F(x_prev, s)), params), params)
    out = gap_metrics(g_full, g_last)
    sig = jacobian_spectral_norm(lambda z: F(z, s), x_prev, cfg.power_iters, generator=gen)
    out.update(
        gamma_measured_mean=float(sig.mean()),
        gamma_measured_max=float(sig.max()),
        gamma_spectral_W=float(torch.linalg.matrix_norm(F.W.detach(), ord=2)),
        gamma_pow_T=cfg.gamma**cfg.T,
    )
    return out


def block_gradient_gap(block, x: torch.Tensor, T: int, loss_fn: Callable[[torch.Tensor], torch.Tensor],
                       key_padding_mask: torch.Tensor | None = None, power_iters: int = 30,
                       seed: int = 0) -> dict[str, float]:
    """The same measurement on a PoH block (``potlib.models.poh.PoHBlock``) with its current weights.

    Runs the block's inner loop for ``T`` iterations (whatever T it was trained with) on input ``x``
    (B, N, D), reads out with ``loss_fn(y)`` where y is the block output, and compares the gradients
    w.r.t. the block's parameters of full BPTT and of the last iterate. gamma: spectral norm of the
    Jacobian of one inner iteration (ctx -> routed ctx) at ctx_{T-1}, per sentence.
    """
    if T < 1:
        raise ValueError(f"T = {T} is not allowed: must be >= 1")
    params = [p for p in block.parameters() if p.requires_grad]
    x = x.detach()
    was_training = block.training
    block.eval()  # no dropout / the same routing in both passes
    try:
        with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
            torch.manual_seed(seed)
            ctx = block.ln1(x)
            for _ in range(T):
                ctx = block.step(ctx, key_padding_mask)[0]
            g_full = _flat(torch.autograd.grad(loss_fn(block.finish(x, ctx)), params, allow_unused=True), params)
            if T == 1:
                ctx_prev = block.ln1(x)  # one step: last = full, LN1 stays in the graph
            else:
                with torch.no_grad():
                    ctx_prev = block.ln1(x)
                    for _ in range(T - 1):
                        ctx_prev = block.step(ctx_prev, key_padding_mask)[0]
            last = block.step(ctx_prev, key_padding_mask)[0]
            g_last = _flat(torch.autograd.grad(loss_fn(block.finish(x, last)), params, allow_unused=True), params)
            out = gap_metrics(g_full, g_last)
            gen = torch.Generator().manual_seed(seed)
            sig = jacobian_spectral_norm(lambda c: block.step(c, key_padding_mask)[0], ctx_prev, power_iters,
                                         generator=gen)
    finally:
        block.train(was_training)
    out.update(gamma_measured_mean=float(sig.mean()), gamma_measured_max=float(sig.max()))
    return out


def run(cfg: TheoryConfig, device: torch.device) -> Outcome:
    torch.manual_seed(cfg.seed)
    return Outcome(metrics=controlled_gap(cfg), dataset="synthetic contractive map (generated from the seed)")


GAMMAS = (0.1, 0.3, 0.5, 0.7, 0.9, 0.99, 1.5)  # 1.5: not contractive in W (tanh saturation bounds it)
TS = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 30)


def _smoke() -> list[TheoryConfig]:
    return grid(TheoryConfig(d=16, batch=16, power_iters=10), gamma=(0.3, 0.9), T=(1, 3))


def _cpu() -> list[TheoryConfig]:
    return grid(TheoryConfig(), seed=(42, 123, 456), gamma=GAMMAS, T=TS)


PROFILES = {"smoke": _smoke, "cpu": _cpu}

EXPERIMENT = Experiment(
    name="gradient_modes_theory",
    title="Theory check: last-iterate vs full-BPTT gradient gap against T and gamma",
    config_cls=TheoryConfig,
    profiles=PROFILES,
    run=run,
    chapter="3.1",
    uses_gpu=False,
    # tensors here are tiny: one thread avoids the thread start-up and contention cost that makes a 2-thread run
    # on a busy 2-core CPU ten times slower
    cpu_threads=1,
)
