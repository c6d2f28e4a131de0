"""Residual MLP for the credit-assignment chapter (SPEC 3.3).

``h_0 = embed(x)``; ``h_l = h_{l-1} + F_l(h_{l-1})`` with ``F_l = LayerNorm -> Linear -> GELU -> Linear``
(pre-norm residual block); ``logits = head(LN(h_L))``.

Two forward passes share the same parameters:

- :meth:`ResMLP.forward` / :meth:`ResMLP.states`: the ordinary pass, a graph through every layer
  (what backprop and the metrics need).
- :meth:`ResMLP.local_forward`: every block sees a *detached* input, so a loss on ``F_l``'s output
  reaches only block ``l``'s parameters. This is the pass the local surrogate
  ``mean_batch <F_l(h_{l-1}), stopgrad(a_l)>`` is computed on (``potlib.credit.train``).

The hidden width of ``F_l`` is ``d_ff`` (default ``d``): the memos do not state it [reconstructed].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Block(nn.Module):
    """``F_l``: pre-LayerNorm -> Linear(d, d_ff) -> GELU -> Linear(d_ff, d)."""

    def __init__(self, d: int, d_ff: int):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, d_ff)
        self.fc2 = nn.Linear(d_ff, d)

    def forward(self, h: Tensor) -> Tensor:  # (B, d) -> (B, d)
        return self.fc2(F.gelu(self.fc1(self.norm(h))))


class ResMLP(nn.Module):
    """Residual MLP with ``n_layers`` blocks; states ``h_0 .. h_L`` are all ``d``-dimensional."""

    def __init__(self, d_in: int, d: int, n_layers: int, n_classes: int, d_ff: int | None = None):
        super().__init__()
        for name, v in (("d_in", d_in), ("d", d), ("n_layers", n_layers), ("n_classes", n_classes)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"ResMLP {name} = {v!r} is not allowed: a positive int")
        self.d, self.n_layers, self.n_classes = d, n_layers, n_classes
        self.embed = nn.Linear(d_in, d)
        self.blocks = nn.ModuleList(Block(d, d_ff or d) for _ in range(n_layers))
        self.norm_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, n_classes)

    # -- the ordinary pass -------------------------------------------------------------------
    def states(self, x: Tensor) -> list[Tensor]:
        """``[h_0, ..., h_L]``, each (B, d), with the full graph."""
        h = self.embed(x)
        hs = [h]
        for blk in self.blocks:
            h = h + blk(h)
            hs.append(h)
        return hs

    def logits(self, h_last: Tensor) -> Tensor:  # (B, d) -> (B, C)
        return self.head(self.norm_f(h_last))

    def forward(self, x: Tensor) -> Tensor:
        return self.logits(self.states(x)[-1])

    def loss_from(self, layer: int, h: Tensor, y: Tensor) -> Tensor:
        """Per-sample cross-entropy when ``h`` replaces ``h_layer`` and later layers are fixed.

        ``h`` may hold several copies of the batch stacked on the first axis (``y`` repeated to
        match); used by the ρ metric (perturbed states) and by the true-gradient computation.
        """
        for blk in self.blocks[layer:]:
            h = h + blk(h)
        return F.cross_entropy(self.logits(h), y, reduction="none")  # (N,)

    # -- the local pass ----------------------------------------------------------------------
    def local_forward(self, x: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """``(hs, fs)``: states ``h_0..h_L`` and block outputs; block ``l`` gets ``h_{l-1}`` detached.

        ``hs[0]`` carries the graph of ``embed``; ``fs[l-1] = F_l(h_{l-1}.detach())`` carries only
        block ``l``'s parameters. ``hs[l]`` for ``l >= 1`` are detached values.
        """
        h0 = self.embed(x)
        hs, fs = [h0], []
        h = h0.detach()
        for blk in self.blocks:
            f = blk(h)
            fs.append(f)
            h = h + f.detach()
            hs.append(h)
        return hs, fs


def true_state_grads(model: ResMLP, x: Tensor, y: Tensor) -> tuple[list[Tensor], Tensor]:
    """``([∂CE_i/∂h_l]_{l=0..L}, logits)``: per-sample gradients of the cross-entropy (BP credit).

    Gradients are of the *sum* of per-sample losses, so row ``i`` is ``∂CE_i/∂h_{l,i}`` (samples do
    not interact). Parameter gradients are not touched.
    """
    with torch.enable_grad():
        # start from a detached leaf: works with frozen parameters and builds no graph into embed
        h = model.embed(x).detach().requires_grad_(True)
        hs = [h]
        for blk in model.blocks:
            h = h + blk(h)
            hs.append(h)
        logits = model.logits(hs[-1])
        ce = F.cross_entropy(logits, y, reduction="sum")
        grads = torch.autograd.grad(ce, hs)
    return [g.detach() for g in grads], logits.detach()
