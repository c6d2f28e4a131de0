"""Stacked networks for replica training: R same-shaped models as one, with a leading replica axis.

:class:`StackedResMLP` (the forward net) and :class:`StackedCondNet` (a bridge's state predictor or value
net) hold R models' parameters stacked, ``(R, out, in)``, and run them with batched matmuls
(``torch.baddbmm``): every activation is ``(R, N, ·)``, and each replica's output is exactly its own
model's. :class:`ReplicaSplit` holds one data split for R replicas. Used by :mod:`potlib.credit.replicas`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from potlib.credit.rules import CondNet
from potlib.models.resmlp import ResMLP


class StackedResMLP(nn.Module):
    """R :class:`ResMLP` networks with stacked parameters; every activation is (R, N, ·).

    Parameter ``name`` of replica r is ``self.stacked[name][r]``; the functions mirror ResMLP's
    (``embed``, ``states``, ``logits``, ``local_forward``).
    """

    def __init__(self, models: list[ResMLP]):
        super().__init__()
        m0 = models[0]
        self.R, self.d, self.n_layers, self.n_classes = len(models), m0.d, m0.n_layers, m0.n_classes
        self.d_in, self.d_ff = m0.embed.in_features, m0.blocks[0].fc1.out_features
        self.names = [k for k, _ in m0.named_parameters()]
        per = [dict(m.named_parameters()) for m in models]
        # nn.ParameterDict keys may not contain dots
        self.stacked = nn.ParameterDict({
            k.replace(".", "__"): nn.Parameter(torch.stack([p[k].detach() for p in per]).clone()) for k in self.names
        })

    def p(self, name: str) -> Tensor:
        return self.stacked[name.replace(".", "__")]

    def _lin(self, x: Tensor, prefix: str) -> Tensor:
        """Batched Linear: x (R, N, in) or shared (N, in) -> (R, N, out)."""
        w, b = self.p(prefix + ".weight"), self.p(prefix + ".bias")  # (R, out, in), (R, out)
        if x.dim() == 2:  # same inputs for every replica: one (N, in) @ (in, R*out) matmul
            return torch.einsum("ni,roi->rno", x, w) + b.unsqueeze(1)
        return torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))

    def _ln(self, h: Tensor, prefix: str) -> Tensor:  # (R, N, d), affine per replica
        out = F.layer_norm(h, (h.shape[-1],), eps=1e-5)
        return out * self.p(prefix + ".weight").unsqueeze(1) + self.p(prefix + ".bias").unsqueeze(1)

    def embed(self, x: Tensor) -> Tensor:
        return self._lin(x, "embed")

    def block(self, l: int, h: Tensor) -> Tensor:  # F_{l+1}: (R, N, d) -> (R, N, d)
        pre = f"blocks.{l}"
        return self._lin(F.gelu(self._lin(self._ln(h, pre + ".norm"), pre + ".fc1")), pre + ".fc2")

    def logits(self, h_last: Tensor) -> Tensor:  # (R, N, d) -> (R, N, C)
        return self._lin(self._ln(h_last, "norm_f"), "head")

    def states(self, x: Tensor) -> list[Tensor]:
        h = self.embed(x)
        hs = [h]
        for l in range(self.n_layers):
            h = h + self.block(l, h)
            hs.append(h)
        return hs

    def local_forward(self, x: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """As :meth:`ResMLP.local_forward`: block l sees h_{l-1} detached."""
        h0 = self.embed(x)
        hs, fs = [h0], []
        h = h0.detach()
        for l in range(self.n_layers):
            f = self.block(l, h)
            fs.append(f)
            h = h + f.detach()
            hs.append(h)
        return hs, fs

    def true_state_grads(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """``(∂CE/∂h_l stacked (R, L+1, N, d), logits (R, N, C))``, as ``resmlp.true_state_grads``."""
        with torch.enable_grad():
            h = self.embed(x).detach().requires_grad_(True)
            hs = [h]
            for l in range(self.n_layers):
                h = h + self.block(l, h)
                hs.append(h)
            logits = self.logits(hs[-1])
            # replicas are independent, so the sum over replicas leaves each replica's gradient alone
            grads = torch.autograd.grad(ce_per_sample(logits, y).sum(), hs)
        return torch.stack(grads, 1).detach(), logits.detach()

    def replica(self, r: int) -> ResMLP:
        """Replica ``r`` as a plain :class:`ResMLP` (a copy, same device and dtype)."""
        ref = self.p("embed.weight")
        m = ResMLP(self.d_in, self.d, self.n_layers, self.n_classes, self.d_ff).to(device=ref.device, dtype=ref.dtype)
        m.load_state_dict({k: self.p(k)[r].detach().clone() for k in self.names})
        return m


class StackedCondNet(nn.Module):
    """R :class:`potlib.credit.rules.CondNet` (value net or state predictor) with stacked parameters.

    ``forward(h (R, N, d), t (N,) layer indices shared by all replicas, s (R, N, s_dim), h_last (R, N, d) or
    None) -> (R, N, out)``, the same function as each CondNet on its replica's rows.
    """

    def __init__(self, nets: list[CondNet]):
        super().__init__()
        self.names = [k for k, _ in nets[0].named_parameters()]
        per = [dict(n.named_parameters()) for n in nets]
        self.has_proj = nets[0].proj is not None
        self.stacked = nn.ParameterDict({
            k.replace(".", "__"): nn.Parameter(torch.stack([q[k].detach() for q in per]).clone()) for k in self.names
        })

    def p(self, name: str) -> Tensor:
        return self.stacked[name.replace(".", "__")]

    def _lin(self, x: Tensor, prefix: str) -> Tensor:  # (R, N, in) -> (R, N, out)
        return torch.baddbmm(self.p(prefix + ".bias").unsqueeze(1), x, self.p(prefix + ".weight").transpose(1, 2))

    def _norm(self, h: Tensor) -> Tensor:
        out = F.layer_norm(h, (h.shape[-1],), eps=1e-5)
        return out * self.p("norm.weight").unsqueeze(1) + self.p("norm.bias").unsqueeze(1)

    def forward(self, h: Tensor, t: Tensor, s: Tensor, h_last: Tensor | None) -> Tensor:
        parts = [self._norm(h), self.p("t_emb.weight")[:, t], s]
        if self.has_proj:
            parts.append(self._lin(self._norm(h_last), "proj"))
        z = torch.cat(parts, -1)
        z = F.gelu(self._lin(z, "mlp.0"))
        z = F.gelu(self._lin(z, "mlp.2"))
        return self._lin(z, "mlp.4")

    def forward_shared_context(self, h: Tensor, t: Tensor, s: Tensor, h_last: Tensor | None, k: int) -> Tensor:
        """``forward(h, t.repeat(k), s.repeat(1, k, 1), h_last.repeat(1, k, 1))``, to float rounding, for ``h``
        (R, k*N, d) made of k blocks of N rows that share ``t`` (N,), ``s`` (R, N, s_dim) and ``h_last`` (R, N, d):
        CB's K noisy copies of the next states. The first Linear is split by its input columns: the shared part
        (layer embedding, ``s``, projection, and the LayerNorm's shift through its weight) is computed once per N rows
        instead of k times, and the LayerNorm's scale is folded into the weight, so the k*N rows need neither the
        affine nor the concatenation. Returns (R, k*N, out)."""
        R, d = h.shape[0], h.shape[-1]
        w0 = self.p("mlp.0.weight")  # (R, width, d_in), columns [LN(h) | emb(t) | s | proj]
        w_h = w0[:, :, :d]
        parts = [self.p("t_emb.weight")[:, t], s]
        if self.has_proj:
            parts.append(self._lin(self._norm(h_last), "proj"))
        bias = self.p("mlp.0.bias") + torch.einsum("rwd,rd->rw", w_h, self.p("norm.bias"))  # (R, width)
        shared = torch.baddbmm(bias.unsqueeze(1), torch.cat(parts, -1), w0[:, :, d:].transpose(1, 2))  # (R, N, width)
        z = torch.bmm(F.layer_norm(h, (d,), eps=1e-5), (w_h * self.p("norm.weight").unsqueeze(1)).transpose(1, 2))
        z.view(R, k, -1, z.shape[-1]).add_(shared.unsqueeze(1))  # (R, k*N, width)
        z = F.gelu(self._lin(F.gelu(z), "mlp.2"))
        return self._lin(z, "mlp.4")

    def state_dict_of(self, r: int) -> dict[str, Tensor]:
        """Replica ``r``'s parameters under CondNet's names (for ``CondNet.load_state_dict``)."""
        return {k: self.p(k)[r].detach().clone() for k in self.names}


def ce_per_sample(logits: Tensor, y: Tensor) -> Tensor:
    """Cross-entropy (R, N, C), (R, N) -> (R, N)."""
    r, n, c = logits.shape
    return F.cross_entropy(logits.reshape(r * n, c), y.reshape(r * n), reduction="none").view(r, n)


def per_replica_data(data, n: int) -> list[tuple[Tensor, ...]]:
    """``data`` as one ``(x_train, y_train, x_test, y_test)`` tuple per replica (one tuple shared, or a list of n)."""
    if isinstance(data, tuple) and len(data) == 4 and isinstance(data[0], Tensor):
        return [data] * n
    data = list(data)
    if len(data) != n:
        raise ValueError(f"data: got {len(data)} datasets for {n} configs; pass one tuple or one per config")
    return data


class ReplicaSplit:
    """One split for R replicas: shared (N, ·) tensors, or stacked (R, N, ·) when replicas differ."""

    def __init__(self, xs: list[Tensor], ys: list[Tensor]):
        self.shared = all(x is xs[0] for x in xs) and all(y is ys[0] for y in ys)
        if not self.shared and len({tuple(x.shape) for x in xs}) != 1:
            raise ValueError(f"data: replicas need equal shapes, got {sorted({tuple(x.shape) for x in xs})}")
        self.x = xs[0] if self.shared else torch.stack(xs)  # (N, d_in) or (R, N, d_in)
        self.y = ys[0] if self.shared else torch.stack(ys)
        self.R, self.n = len(xs), xs[0].shape[0]

    def gather(self, idx: Tensor) -> tuple[Tensor, Tensor]:
        """Rows ``idx`` (R, B) of each replica's data: (R, B, d_in), (R, B)."""
        if self.shared:
            return self.x[idx], self.y[idx]
        rows = torch.arange(self.R, device=idx.device).unsqueeze(1)  # (R, 1)
        return self.x[rows, idx], self.y[rows, idx]

    def head(self, m: int) -> tuple[Tensor, Tensor]:
        """The first ``m`` examples of every replica, as (R, m, d_in) / (R, m) (a view when shared)."""
        if self.shared:
            return self.x[:m].expand(self.R, -1, -1), self.y[:m].expand(self.R, -1)
        return self.x[:, :m], self.y[:, :m]
