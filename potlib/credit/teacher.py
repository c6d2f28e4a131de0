"""The synthetic nonlinearity ladder (SPEC 3.3, Phase 1): a random teacher network labels Gaussian inputs.

The whole teacher is **[reconstructed]**: the memos state only "teacher–student, φ_α(z) = (1−α)z +
α tanh z, d=128, C=10". Our reading, written down so it can be judged:

- inputs ``x ~ N(0, I_d)``;
- ``depth`` random layers ``z_k = φ_α(standardise(W_k z_{k−1}))`` with ``W_k`` Gaussian; each
  pre-activation unit is standardised to zero mean and unit variance over a fixed reference sample
  (4096 draws), so that tanh works in its nonlinear range at every depth and α alone sets how
  nonlinear the map is (α = 0: the teacher is linear and the classes are linearly separable);
- logits ``W_out z_depth`` with each class's mean over the reference sample subtracted (so classes are
  roughly balanced); ``y = argmax``;
- the teacher and the train/test sets depend only on ``(alpha, depth, d, n_classes, teacher_seed)``
  and the sizes, never on the training seed: every method and seed sees the same data.

Our dataset sizes (not in the memos): 10,000 training and 2,000 test examples by default.
"""

from __future__ import annotations

import hashlib

import torch
from torch import Tensor


def phi(z: Tensor, alpha: float) -> Tensor:
    """The ladder nonlinearity ``(1 − α) z + α tanh z``."""
    return (1.0 - alpha) * z + alpha * torch.tanh(z)


class LadderTeacher:
    """A fixed random teacher; call it on (N, d) inputs to get (N, C) logits."""

    def __init__(self, alpha: float, depth: int, d: int, n_classes: int, seed: int = 0, n_ref: int = 4096):
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha = {alpha!r} is not allowed: a number in [0, 1]")
        if depth < 1 or d < 1 or n_classes < 2:
            raise ValueError(f"teacher needs depth >= 1, d >= 1, n_classes >= 2; got {depth}, {d}, {n_classes}")
        self.alpha, self.depth, self.d, self.n_classes = alpha, depth, d, n_classes
        g = torch.Generator().manual_seed(int(seed))
        self.weights = [torch.randn(d, d, generator=g, dtype=torch.float64) / d**0.5 for _ in range(depth)]
        self.w_out = torch.randn(d, n_classes, generator=g, dtype=torch.float64) / d**0.5
        ref = torch.randn(n_ref, d, generator=g, dtype=torch.float64)
        # statistics of every pre-activation on the reference sample fix the teacher once and for all
        self.mu, self.sd = [], []
        z = ref
        for w in self.weights:
            u = z @ w
            self.mu.append(u.mean(0))
            self.sd.append(u.std(0) + 1e-8)
            z = phi((u - self.mu[-1]) / self.sd[-1], alpha)
        self.logit_mean = (z @ self.w_out).mean(0)

    def __call__(self, x: Tensor) -> Tensor:
        z = x.double()
        for w, mu, sd in zip(self.weights, self.mu, self.sd):
            z = phi((z @ w - mu) / sd, self.alpha)
        return z @ self.w_out - self.logit_mean  # (N, C)


def make_ladder(alpha: float, depth: int, d: int = 128, n_classes: int = 10, n_train: int = 10000,
                n_test: int = 2000, seed: int = 0, device: str | torch.device = "cpu"):
    """``(x_train, y_train, x_test, y_test, info)`` on ``device``; float32 inputs, int64 labels.

    Generated on the CPU in float64 (identical on every device), then moved. ``info`` has the
    dataset name, the sha256 of the generated tensors and the majority-class fraction of the test set.
    """
    if n_train < 1 or n_test < 1:
        raise ValueError(f"n_train = {n_train!r}, n_test = {n_test!r}: both must be >= 1")
    teacher = LadderTeacher(alpha, depth, d, n_classes, seed)
    g = torch.Generator().manual_seed(int(seed) + 1)
    x = torch.randn(n_train + n_test, d, generator=g, dtype=torch.float64)
    y = teacher(x).argmax(-1)
    x = x.float()
    h = hashlib.sha256()
    h.update(x.numpy().tobytes())
    h.update(y.numpy().tobytes())
    counts = torch.bincount(y[n_train:], minlength=n_classes)
    info = {
        "dataset": f"synthetic ladder teacher [reconstructed] (alpha={alpha}, depth={depth}, d={d}, "
                   f"C={n_classes}, teacher_seed={seed}, n={n_train}/{n_test})",
        "sha256": h.hexdigest(),
        "majority_frac": float(counts.max()) / n_test,
    }
    x, y = x.to(device), y.to(device)
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:], info
