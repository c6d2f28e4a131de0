"""Biaffine head pointer with a learned ROOT (PoT ``BiaffinePointer``; Dozat & Manning 2017).

Candidates for the head of word i are H = [ROOT ; X_1 .. X_N]; the score is
``logit[i, j] = (X_i W) . H_j + u . H_j + b`` (W: d x d, Xavier-uniform; u, b: ``Linear(d, 1)``;
ROOT ~ N(0, 0.02^2)). Padded candidates get -inf; the loss is cross-entropy over the N+1 candidates
for every real word, with gold 0 = ROOT and k = word k (CoNLL-U convention). Prediction is the
per-word argmax, no tree constraint, as in the original.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class BiaffinePointer(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.W = nn.Parameter(torch.empty(d, d))
        nn.init.xavier_uniform_(self.W)
        self.U = nn.Linear(d, 1, bias=True)  # u . H_j + b
        self.root = nn.Parameter(torch.randn(d) * 0.02)

    def forward(self, X: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """X: (B, N, D), mask: (B, N) True = real word -> logits (B, N, N+1).

        Rows of padded dependents are left finite (they are excluded from loss and metrics), so no
        NaN can leak into a reduction.
        """
        B, N, D = X.shape
        H = torch.cat([self.root.view(1, 1, D).expand(B, 1, D), X], dim=1)  # (B, N+1, D)
        logits = (X @ self.W) @ H.transpose(1, 2)  # (B, N, N+1)
        logits = logits + self.U(H).squeeze(-1).unsqueeze(1)  # + u.H_j + b, broadcast over i
        cand = torch.cat([mask.new_ones(B, 1), mask], dim=1)  # (B, N+1), ROOT always allowed
        return logits.masked_fill(~cand.unsqueeze(1), float("-inf"))


def heads_tensor(heads: list[list[int]], n: int, device) -> torch.Tensor:
    """Gold heads as (B, n) long, 0 = ROOT, padded with 0 (padding is masked everywhere)."""
    out = torch.zeros(len(heads), n, dtype=torch.long)
    for b, h in enumerate(heads):
        if len(h) > n:
            raise ValueError(f"sentence {b} has {len(h)} heads but only {n} word vectors")
        bad = [x for x in h if not 0 <= x <= len(h)]
        if bad:
            raise ValueError(f"sentence {b} has head indices {bad[:3]} outside [0, {len(h)}]")
        out[b, : len(h)] = torch.tensor(h, dtype=torch.long)
    return out.to(device)


def pointer_loss(logits: torch.Tensor, gold: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over real words. logits (B, N, N+1), gold (B, N), mask (B, N)."""
    return F.cross_entropy(logits[mask], gold[mask])
