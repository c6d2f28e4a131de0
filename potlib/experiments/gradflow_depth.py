"""Per-layer gradient norms of pre-norm, post-norm and no-residual stacks, at init and after training.

Backs the gradient-flow chapter's depth figure (SPEC section 3.4; seed 004, "Pre-Norm vs Post-Norm",
"Residual Connection Gradients", "The Role of Initialization"). For each layout, depth and
with/without GPT-2's output scaling we measure, on the same held-out batches:

- ``param_grad``: the norm of dL/dθ over each block's parameters (what the optimiser sees);
- ``act_grad``: the norm of dL/dh_l for every residual-stream state h_0..h_L (what flows back);
- ``stream_rms``: the forward RMS of every h_l (what GPT-2's output scaling keeps from growing);

once at initialisation and once after ``train_steps`` AdamW steps on a copy task that needs attention
(predict the token ``shift`` positions back). The flatness of these profiles is the tutorial's
"healthy" pattern; their slope is measured as log10(first / last).

Runtime: smoke ~3 s on a 2-core CPU; paper 72 runs, ~10 min on a 2-core CPU (CPU chapter: the
model is tiny and the measurement is exact on any device).

    python -m potlib run gradflow_depth --profile smoke
    python -m potlib run gradflow_depth --profile paper --executor local
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from potlib.config import Config, grid
from potlib.experiments import Experiment
from potlib.runtime import Outcome
from potlib.models.stacks import Norm, Stack, copy_shift_batch


@dataclass(frozen=True)
class GradflowDepthConfig(Config):
    norm: Norm = "pre_norm"  # residual layout (see potlib.models.stacks)
    n_layers: int = 6  # depth of the stack
    output_scaling: bool = False  # GPT-2's 0.02/sqrt(2*layers) init of residual-writing projections
    d_model: int = 64
    n_heads: int = 4
    seq_len: int = 32
    vocab: int = 16
    shift: int = 1  # copy task: target at i is the token at i - shift
    batch_size: int = 32
    train_steps: int = 200  # AdamW steps between the two measurements
    lr: float = 1e-3  # constant, no warmup: the setting in which layouts differ most
    measure_batches: int = 4  # held-out batches averaged for each measurement

    def check(self) -> None:
        self.require(self.n_layers >= 1, "n_layers", "an integer >= 1")
        self.require(self.d_model % self.n_heads == 0, "d_model", "a multiple of n_heads")
        self.require(0 < self.shift < self.seq_len, "shift", "0 < shift < seq_len")
        self.require(self.train_steps >= 0, "train_steps", ">= 0")
        self.require(self.lr > 0, "lr", "> 0")
        self.require(self.measure_batches >= 1, "measure_batches", ">= 1")


def measure(model: Stack, cfg: GradflowDepthConfig, device: torch.device) -> dict[str, np.ndarray]:
    """Mean per-block parameter-gradient norms and per-state activation-gradient norms."""
    g = torch.Generator().manual_seed(10_000 + cfg.seed)  # the same held-out batches every time
    n_blocks = len(model.blocks)
    param = np.zeros(n_blocks)
    act = np.zeros(n_blocks + 1)
    fwd = np.zeros(n_blocks + 1)
    losses = []
    for _ in range(cfg.measure_batches):
        x, y = copy_shift_batch(cfg.batch_size, cfg.seq_len, cfg.vocab, cfg.shift, g, device)
        model.zero_grad(set_to_none=True)
        logits, hidden = model(x, keep_hidden=True)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        loss.backward()
        losses.append(loss.item())
        for i, block in enumerate(model.blocks):
            sq = sum(float(p.grad.pow(2).sum()) for p in block.parameters() if p.grad is not None)
            param[i] += math.sqrt(sq) / cfg.measure_batches
        for i, h in enumerate(hidden):
            # norm per example, averaged: independent of batch size
            act[i] += float(h.grad.flatten(1).norm(dim=1).mean()) * cfg.batch_size / cfg.measure_batches
            # forward RMS of the residual stream: what output scaling is meant to keep flat
            fwd[i] += float(h.detach().pow(2).mean().sqrt()) / cfg.measure_batches
    model.zero_grad(set_to_none=True)
    return {"param_grad": param, "act_grad": act, "stream_rms": fwd, "loss": np.array(np.mean(losses))}


def _slope(v: np.ndarray) -> float:
    """log10(first / last) of a profile: > 0 means the first layers get more gradient.

    A gradient that underflows to exactly zero is floored at float32's smallest normal number, so a
    vanished gradient is recorded as a very negative slope rather than as a non-finite (diverged) run.
    """
    tiny = float(np.finfo(np.float32).tiny)
    return float(np.log10(max(v[0], tiny) / max(v[-1], tiny)))


def run(cfg: GradflowDepthConfig, device: torch.device) -> Outcome:
    model = Stack(cfg.vocab, cfg.seq_len, cfg.d_model, cfg.n_heads, cfg.n_layers, cfg.norm, cfg.output_scaling).to(device)
    at_init = measure(model, cfg, device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    g = torch.Generator().manual_seed(cfg.seed)
    curve = np.zeros(cfg.train_steps)
    for step in range(cfg.train_steps):
        x, y = copy_shift_batch(cfg.batch_size, cfg.seq_len, cfg.vocab, cfg.shift, g, device)
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        curve[step] = loss.item()
        if not math.isfinite(curve[step]):
            curve[step:] = np.nan
            break
    trained = measure(model, cfg, device)
    with torch.no_grad():
        x, y = copy_shift_batch(512, cfg.seq_len, cfg.vocab, cfg.shift, torch.Generator().manual_seed(20_000 + cfg.seed), device)
        acc = float((model(x).argmax(-1) == y).float().mean())
    metrics = {
        "loss_init": float(at_init["loss"]),
        "loss_trained": float(trained["loss"]),
        "accuracy_trained": acc,
        "param_slope_init": _slope(at_init["param_grad"]),
        "param_slope_trained": _slope(trained["param_grad"]),
        "act_slope_init": _slope(at_init["act_grad"]),
        "act_slope_trained": _slope(trained["act_grad"]),
        "act_grad_input_init": float(at_init["act_grad"][0]),
        "act_grad_input_trained": float(trained["act_grad"][0]),
        "stream_rms_growth_init": float(at_init["stream_rms"][-1] / at_init["stream_rms"][0]),
    }
    artifacts = {
        "param_grad_init": at_init["param_grad"],
        "param_grad_trained": trained["param_grad"],
        "act_grad_init": at_init["act_grad"],
        "act_grad_trained": trained["act_grad"],
        "stream_rms_init": at_init["stream_rms"],
        "stream_rms_trained": trained["stream_rms"],
        "loss_curve": curve,
    }
    return Outcome(metrics, artifacts, dataset="synthetic copy-shift task (generated from the seed)")


def _smoke() -> list[Config]:
    base = GradflowDepthConfig(n_layers=2, d_model=16, n_heads=2, seq_len=8, batch_size=8, train_steps=5, measure_batches=1)
    return grid(base, norm=("pre_norm", "post_norm", "no_residual"))


def _cpu() -> list[Config]:
    return grid(
        GradflowDepthConfig(),
        norm=("pre_norm", "post_norm", "no_residual"),
        n_layers=(2, 6, 12, 24),
        output_scaling=(False, True),
        seed=(0, 1, 2),
    )


EXPERIMENT = Experiment(
    name="gradflow_depth",
    title="Per-layer gradient norms vs depth: pre-norm, post-norm, no residual",
    config_cls=GradflowDepthConfig,
    profiles={"smoke": _smoke, "cpu": _cpu},
    run=run,
    chapter="gradient_flow",
)
