"""Forward dynamics of HRM, an RNN and a deep net (HRM Fig 3), and HRM's dimensionality (Fig 8).

Source: seed ``001_42e08a1e02b2ff9f.txt`` ("HRM dynamics", "RNN dynamics", "Deep neural network",
"Participation Ratio") and Wang et al. 2025 (arXiv 2506.21734) Figs 3 and 8.

- **Forward residual** (Fig 3): ``||z_i - z_{i-1}||`` (Frobenius norm over the 82 x d state, mean
  over traced puzzles) at every step. HRM: every L update (x = global L step) and every H update
  (x = L step at which it happens, as in the paper's plot), over ``halt_max_steps`` segments, starting
  from the initial states. RNN: a Recurrent Transformer (a 4-block stack looped, tied weights) per
  loop [our stand-in: the paper does not specify its RNN]. Deep net: a 32-block Transformer per block.
  The paper's finding: L converges within each H cycle and is "reset" by every H update, H converges
  slowly; the RNN converges early, the deep net's residual shrinks with depth.
- **PCA trajectories** (Fig 3): for one puzzle, the states along its trajectory projected on their
  own top-2 principal components.
- **Participation ratio** (Fig 8): ``PR = (sum lambda)^2 / sum lambda^2`` of the covariance of HRM
  states over ``n`` trajectories (test puzzles), for z_H and z_L, trained vs untrained (same init,
  before training), for every ``n`` in ``pr_counts``. Which states enter is a named choice
  [reconstructed: the paper does not say]: ``pr_states="final"`` one state per trajectory (after the
  last segment), ``"all_segments"`` the state after every segment. Paper: trained z_H 89.95 vs z_L
  30.22; untrained 40.75 vs 42.09 (``published/hrm_text_numbers.csv``).

Artifacts hold every array (residual curves, PCA coordinates, PR curves); metrics the headline values.

**Budget gap**: the paper's models are trained on 3.8M puzzles (d=512) for GPU-days; ours on 1,000 hard
puzzles x 100 augmentations for 3,000 steps at d=256, so the trained-vs-untrained contrast is weaker.

Profiles: ``gpu`` as above; ``cpu`` on the difficulty ladder at d=64 (``hrm_train.cpu_base``): HRM
(2+2 blocks, fixed M = 4, and ``cpu_base``'s 2 x 2 cycles, so Fig 3's within-cycle convergence is seen
over 2 low-level steps, not 4), a 2-block stack looped 8 times, a 16-block Transformer, 2,000 steps each;
trajectories are ``n_traj`` test puzzles evenly spaced over the ladder's levels:
3 runs, 13 min on two 1-thread workers after ``hrm_act`` (whose fixed M = 4 run is the HRM here) and the
1,000-step grids (the first halves of the other two), from their saved training states
(:mod:`potlib.checkpoints`); 1-thread seconds per 2,000 steps (2026-12-01, blocks compiled): HRM 675,
looped stack 1,600, Transformer 1,570. Smoke 3 runs, seconds.

    python -m potlib run hrm_dynamics --profile smoke
    python -m potlib run hrm_dynamics --profile cpu --executor local --workers 2
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from potlib.experiments import Experiment
from potlib.runtime import Outcome
from potlib.hrm_train import HRMTrainConfig, autocast, build_model, cpu_base, smoke_base, train_and_evaluate
from potlib.models.hrm import HRM


@dataclass(frozen=True)
class DynamicsConfig(HRMTrainConfig):
    H_cycles: int = 2
    L_cycles: int = 4  # several L steps per H step: the within-cycle convergence of Fig 3
    halt_max_steps: int = 4  # segments traced (and trained with, fixed M)
    act: bool = False
    train_steps: int = 3000
    lr: float = 3e-4  # short budget: a larger lr than HRM's 7e-5 (our choice)
    n_traj: int = 100  # test puzzles traced (Fig 8 uses ~100 trajectories)
    pr_counts: tuple[int, ...] = (10, 20, 50, 100)  # numbers of trajectories for the PR curve
    pr_states: Literal["final", "all_segments"] = "final"  # which states enter the PR [reconstructed]
    pca_example: int = 0  # index (among the traced puzzles) of the PCA trajectory

    def check(self) -> None:
        super().check()
        self.require(self.n_traj >= 2, "n_traj", "an integer >= 2")
        self.require(self.n_traj <= self.n_test, "n_traj", f"<= n_test ({self.n_test})")
        self.require(len(self.pr_counts) > 0 and all(2 <= c <= self.n_traj for c in self.pr_counts),
                     "pr_counts", f"non-empty, each in [2, n_traj={self.n_traj}]")
        self.require(0 <= self.pca_example < self.n_traj, "pca_example", f"in [0, n_traj={self.n_traj})")


def participation_ratio(states: torch.Tensor) -> float:
    """PR of the covariance of ``states`` (N, D): (sum lambda)^2 / sum lambda^2.

    Uses the N x N Gram matrix of the centred states (same non-zero eigenvalues as the D x D
    covariance, and cheap when D = 82 * d is large).
    """
    x = states.double().reshape(states.shape[0], -1)
    x = x - x.mean(0, keepdim=True)
    lam = torch.linalg.eigvalsh(x @ x.T).clamp_min(0)
    return float(lam.sum() ** 2 / (lam**2).sum().clamp_min(1e-300))


def residuals(states: torch.Tensor) -> np.ndarray:
    """``||z_i - z_{i-1}||`` per step, mean over trajectories: states (S+1, N, ...) -> (S,)."""
    d = (states[1:] - states[:-1]).flatten(2).norm(dim=-1)  # (S, N)
    return d.mean(1).cpu().numpy().astype(np.float32)


def pca2(traj: torch.Tensor) -> np.ndarray:
    """Project one trajectory (S, ...) onto its own top-2 principal components: (S, 2)."""
    x = traj.double().reshape(traj.shape[0], -1)
    x = x - x.mean(0, keepdim=True)
    u, s, _ = torch.linalg.svd(x, full_matrices=False)
    out = (u[:, :2] * s[:2]).cpu().numpy().astype(np.float32)
    return np.pad(out, ((0, 0), (0, 2 - out.shape[1])))


@torch.no_grad()
def trace_hrm(cfg: DynamicsConfig, hrm: HRM, x: torch.Tensor, device: torch.device):
    """States of ``halt_max_steps`` segments: zL (1 + S_L, N, T, D), zH (1 + S_H, N, T, D), incl. init."""
    hrm.eval()
    carry = hrm.initial_carry(len(x), x.shape[1])
    zl, zh = [carry.z_L.float()], [carry.z_H.float()]
    for _ in range(cfg.halt_max_steps):
        with autocast(cfg, device):
            carry, _, zL, zH = hrm.trace(carry, x)
        zl.extend(zL.float().unbind(0))
        zh.extend(zH.float().unbind(0))
    return torch.stack(zl), torch.stack(zh)


def hrm_analysis(cfg: DynamicsConfig, hrm: HRM, x: torch.Tensor, device: torch.device, tag: str) -> tuple[dict, dict]:
    zl, zh = trace_hrm(cfg, hrm, x, device)
    arts = {f"{tag}_L_residual": residuals(zl), f"{tag}_H_residual": residuals(zh)}
    arts[f"{tag}_H_step_index"] = (np.arange(1, zh.shape[0]) * cfg.L_cycles).astype(np.int64)
    arts[f"{tag}_pca_L"] = pca2(zl[1:, cfg.pca_example])
    arts[f"{tag}_pca_H"] = pca2(zh[1:, cfg.pca_example])
    if cfg.pr_states == "final":
        pick_h, pick_l = zh[-1:], zl[-1:]
    else:  # the state after every segment
        pick_h, pick_l = zh[cfg.H_cycles :: cfg.H_cycles], zl[cfg.H_cycles * cfg.L_cycles :: cfg.H_cycles * cfg.L_cycles]
    metrics = {}
    for name, states in (("zH", pick_h), ("zL", pick_l)):
        curve = np.array([participation_ratio(states[:, :c].transpose(0, 1).flatten(0, 1)) for c in cfg.pr_counts])
        arts[f"pr_{name}_{tag}"] = curve.astype(np.float32)
        metrics[f"pr_{name}_{tag}"] = float(curve[-1])
    return metrics, arts


@torch.no_grad()
def stack_analysis(cfg: DynamicsConfig, model, x: torch.Tensor, device: torch.device) -> tuple[dict, dict]:
    model.eval()
    with autocast(cfg, device):
        _, states = model(x, return_states=True)
    z = torch.stack([model.embed(x).float()] + [s.float() for s in states])  # (1 + S, N, T, D)
    res = residuals(z)
    kind = "rnn" if cfg.model == "recurrent_transformer" else "dnn"
    return ({f"{kind}_residual_last_over_first": float(res[-1] / max(res[0], 1e-12))},
            {f"{kind}_residual": res, f"{kind}_pca": pca2(z[1:, cfg.pca_example])})


def _smoke() -> list[DynamicsConfig]:
    base = DynamicsConfig(**smoke_base(act=False, H_cycles=2, L_cycles=2, train_steps=4), n_traj=12, pr_counts=(4, 12))
    return [base, base.replace(model="recurrent_transformer", n_layers=1, loops=3),
            base.replace(model="transformer", n_layers=3)]


def _gpu() -> list[DynamicsConfig]:
    base = DynamicsConfig()
    return [base, base.replace(model="recurrent_transformer", n_layers=4, loops=16),
            base.replace(model="transformer", n_layers=32)]


def _cpu() -> list[DynamicsConfig]:
    # ladder at d=64: HRM (2+2 blocks, fixed M=4), a 2-block stack looped 8 times, a 16-block Transformer
    base = DynamicsConfig(**cpu_base(act=False, halt_max_steps=4))
    return [base, base.replace(model="recurrent_transformer", n_layers=2, loops=8),
            base.replace(model="transformer", n_layers=16)]


def run(cfg: DynamicsConfig, device: torch.device) -> Outcome:
    torch.manual_seed(cfg.seed)
    untrained = build_model(cfg).to(device)  # the same init train_and_evaluate starts from
    model, data, metrics, arts = train_and_evaluate(cfg, device)
    # Evenly spaced over the test set: the ladder's test rows are ordered by level, so the first n_traj
    # would all be the easiest level; this takes every level alike (the hard split is unordered).
    x = data.test_x[torch.linspace(0, len(data.test_x) - 1, cfg.n_traj).round().long()].to(device)
    if cfg.model == "hrm":
        for net, tag in ((model, "trained"), (untrained, "untrained")):
            m, a = hrm_analysis(cfg, net.hrm, x, device, tag)
            metrics.update(m)
            arts.update(a)
    else:
        m, a = stack_analysis(cfg, model, x, device)
        metrics.update(m)
        arts.update(a)
    return Outcome(metrics=metrics, artifacts=arts, dataset=data.dataset, dataset_sha256=data.sha256)


EXPERIMENT = Experiment(
    name="hrm_dynamics",
    title="HRM paper Figs 3 and 8: forward residuals, PCA trajectories, participation ratio",
    config_cls=DynamicsConfig,
    profiles={"smoke": _smoke, "cpu": _cpu, "gpu": _gpu},
    run=run,
    chapter="3.2",
    uses_gpu=True,
)
