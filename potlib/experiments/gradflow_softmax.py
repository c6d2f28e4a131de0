"""Softmax saturation with and without the 1/sqrt(d_k) scale of dot-product attention.

Backs the gradient-flow chapter's softmax figure (SPEC section 3.4; seed 004, "The Scaling Factor's
Role"; Vaswani et al. 2017, section 3.2.1). Queries and keys have unit-variance coordinates, as
after a LayerNorm, so an unscaled score q.k has standard deviation sqrt(d_k). For each key
dimension we measure, over ``n_queries`` rows of ``n_keys`` keys:

- the spread of the scores and how peaked the attention is (mean max weight, entropy / log n,
  fraction of rows with max weight > 0.99, i.e. saturated);
- the size of the softmax Jacobian ``diag(a) - a a^T`` (Frobenius norm, exactly), and
- the gradient that reaches the query, ``|dL/dq|``, for a fixed random upstream gradient on the
  attention output (by autograd).

Runtime: smoke < 1 s; paper 48 configs, ~5 s on a 2-core CPU.

    python -m potlib run gradflow_softmax --profile smoke
    python -m potlib run gradflow_softmax --profile paper
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from potlib.config import Config, grid
from potlib.experiments import Experiment
from potlib.runtime import Outcome


@dataclass(frozen=True)
class GradflowSoftmaxConfig(Config):
    d_k: int = 64  # key/query dimension
    scaled: bool = True  # divide scores by sqrt(d_k)
    n_keys: int = 64  # keys per query (sequence length)
    n_queries: int = 512  # independent rows averaged

    def check(self) -> None:
        self.require(self.d_k >= 1, "d_k", ">= 1")
        self.require(self.n_keys >= 2, "n_keys", ">= 2")
        self.require(self.n_queries >= 1, "n_queries", ">= 1")


def run(cfg: GradflowSoftmaxConfig, device: torch.device) -> Outcome:
    g = torch.Generator().manual_seed(cfg.seed)
    q = torch.randn(cfg.n_queries, 1, cfg.d_k, generator=g).to(device).requires_grad_(True)  # (Q, 1, d)
    k = torch.randn(cfg.n_queries, cfg.n_keys, cfg.d_k, generator=g).to(device)  # (Q, n, d)
    v = torch.randn(cfg.n_queries, cfg.n_keys, cfg.d_k, generator=g).to(device)  # (Q, n, d)
    upstream = torch.randn(cfg.n_queries, 1, cfg.d_k, generator=g).to(device)  # dL/d(output)

    scores = q @ k.transpose(-2, -1)  # (Q, 1, n)
    if cfg.scaled:
        scores = scores / math.sqrt(cfg.d_k)
    attn = scores.softmax(-1)
    out = attn @ v  # (Q, 1, d)
    (out * upstream).sum().backward()
    a = attn.detach().squeeze(1)  # (Q, n)

    # ||diag(a) - a a^T||_F^2 = sum a^2 - 2 sum a^3 + (sum a^2)^2, exactly
    s2, s3 = a.pow(2).sum(-1), a.pow(3).sum(-1)
    jac_fro = (s2 - 2 * s3 + s2**2).clamp_min(0).sqrt()
    entropy = -(a * a.clamp_min(1e-30).log()).sum(-1) / math.log(cfg.n_keys)
    maxw = a.max(-1).values
    metrics = {
        "score_std": float(scores.detach().std()),
        "max_weight_mean": float(maxw.mean()),
        "entropy_norm_mean": float(entropy.mean()),
        "saturated_fraction": float((maxw > 0.99).float().mean()),
        "softmax_jacobian_fro_mean": float(jac_fro.mean()),
        "grad_q_norm_mean": float(q.grad.squeeze(1).norm(dim=-1).mean()),
    }
    return Outcome(metrics, {"max_weight": maxw.cpu().numpy().astype(np.float32)},
                   dataset="synthetic Gaussian queries/keys (generated from the seed)")


def _smoke() -> list[Config]:
    return grid(GradflowSoftmaxConfig(n_keys=8, n_queries=16), d_k=(4, 64), scaled=(True, False))


def _cpu() -> list[Config]:
    return grid(GradflowSoftmaxConfig(), d_k=(4, 8, 16, 32, 64, 128, 256, 1024), scaled=(True, False), seed=(0, 1, 2))


EXPERIMENT = Experiment(
    name="gradflow_softmax",
    title="Softmax saturation and gradient to the query, with and without 1/sqrt(d_k)",
    config_cls=GradflowSoftmaxConfig,
    profiles={"smoke": _smoke, "cpu": _cpu},
    run=run,
    chapter="gradient_flow",
)
