"""Credit-quality metrics Γ and ρ (SPEC 3.3), per layer ``l = 1..L``.

- **Γ** (gradient alignment): batch mean of the cosine between the credit ``a_l`` and the true
  per-sample gradient ``∂CE_i/∂h_l``. Scale-free, so the credit normalisation does not matter.
- **ρ** (local usefulness, no backprop needed in principle): Pearson correlation, over
  samples × directions, between the predicted change ``ε⟨a_l, v⟩`` and the measured change
  ``CE(h_l + εv) − CE(h_l)`` with the later layers fixed; ``v`` random unit vectors, drawn
  independently for every (sample, direction) pair [reconstructed: the memos do not say whether
  directions are shared across samples]. Defaults as in the paper: ε = 1e-3, 32 directions;
  the caller picks the samples (1024 in the paper).

ρ is computed in the model's dtype (float32 in training). The memo reports ρ = 0.9965 for BP credit
and 0.0056 for a random vector; the ladder page sets ours beside them.
"""

from __future__ import annotations

import torch
from torch import Tensor

from potlib.credit.rules import CreditRule, normalise_credit, terminal_pass
from potlib.models.resmlp import ResMLP, true_state_grads


def gamma_per_layer(credit: Tensor, true_grads: Tensor) -> Tensor:
    """Γ_l for l = 1..L: mean over the batch of cos(a_l, ∂L/∂h_l); inputs (L+1, B, d) -> (L,)."""
    a = credit[1:].double()
    g = true_grads[1:].double()
    cos = (a * g).sum(-1) / (a.norm(dim=-1) * g.norm(dim=-1)).clamp_min(1e-300)  # (L, B)
    return cos.mean(-1).float()


def pearson(u: Tensor, v: Tensor) -> float:
    """Pearson correlation of two flat tensors (float64); 0 when either is constant."""
    u, v = u.double().flatten(), v.double().flatten()
    u, v = u - u.mean(), v - v.mean()
    den = (u.norm() * v.norm()).item()
    return float((u @ v).item() / den) if den > 0 else 0.0


@torch.no_grad()
def rho_per_layer(model: ResMLP, hs: list[Tensor], y: Tensor, credit: Tensor, eps: float = 1e-3,
                  n_dirs: int = 32, generator: torch.Generator | None = None,
                  max_rows: int = 65536) -> Tensor:
    """ρ_l for l = 1..L (see module docstring); ``hs`` states (B, d), ``credit`` (L+1, B, d) -> (L,).

    Perturbed copies are pushed through the remaining layers in chunks of ``max_rows`` rows.
    """
    if eps <= 0 or n_dirs < 1:
        raise ValueError(f"rho needs eps > 0 and n_dirs >= 1, got eps={eps!r}, n_dirs={n_dirs!r}")
    out = []
    b, d = hs[0].shape
    per_chunk = max(1, max_rows // b)  # directions per chunk
    for l in range(1, len(hs)):
        h, a = hs[l], credit[l]
        base = model.loss_from(l, h, y)  # (B,)
        preds, diffs = [], []
        for start in range(0, n_dirs, per_chunk):
            m = min(per_chunk, n_dirs - start)
            v = torch.randn(m, b, d, device=h.device, dtype=h.dtype, generator=generator)
            v = v / v.norm(dim=-1, keepdim=True)  # (m, B, d) unit directions
            pert = model.loss_from(l, (h + eps * v).flatten(0, 1), y.repeat(m))  # (m*B,)
            diffs.append(pert.view(m, b) - base)
            preds.append(eps * (v * a).sum(-1))  # (m, B)
        out.append(pearson(torch.cat(preds), torch.cat(diffs)))
    return torch.tensor(out)


def credit_metrics(model: ResMLP, rule: CreditRule, x: Tensor, y: Tensor, *, eps: float = 1e-3,
                   n_dirs: int = 32, with_rho: bool = True, progress: float = 1.0,
                   generator: torch.Generator | None = None) -> dict[str, list[float] | float]:
    """Γ (and ρ) of ``rule``'s credit on the batch ``(x, y)``: means over l ≥ 1 and per-layer lists.

    ``progress`` is passed to the rule (1.0: a bridge's own credit, past any DFA warmup).
    """
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            hs = model.states(x)
        with torch.enable_grad():
            p, _ = terminal_pass(model, x, y, hs)
        a = rule.credit(model, p, progress).detach()  # (L+1, B, d)
        grads, _ = true_state_grads(model, x, y)
        g_l = gamma_per_layer(a, torch.stack(grads))
        out: dict[str, list[float] | float] = {
            "gamma": float(g_l.mean()), "gamma_per_layer": [float(v) for v in g_l],
        }
        if with_rho:
            r_l = rho_per_layer(model, p.hs, y, normalise_credit(a), eps, n_dirs, generator)
            out.update(rho=float(r_l.mean()), rho_per_layer=[float(v) for v in r_l])
        return out
    finally:
        model.train(was_training)
