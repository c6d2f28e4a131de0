"""The PoT dependency parser and its published training recipe (SPEC section 3.1).

Model (Eran-BA/PoT ``ab_ud_pointer_vs_baseline.py``): fine-tuned encoder -> word vectors (mean of
sub-words) -> one block (vanilla or PoH) -> biaffine pointer. Recipe as published: AdamW (weight
decay 0.01), lr 3e-5 constant (the original defines a warmup schedule but never passes it), global
gradient clipping at 1.0, batch 32, 3 epochs, batches in file order (no shuffling). PoH parameter
groups: encoder lr, controller 20 x lr, everything else 2 x lr; the vanilla parser uses one lr.

**Deep supervision** (PoT ``src/models/poh.py`` + ``src/utils/iterative_losses.py``): during training
only, loss = sum_t w_t CE_t with w = linspace(0.3, 1, T) / sum. ``ds_readout="routed"`` is the
original: the pointer scores the raw routed states ctx_1..ctx_T (no residual, no FFN, so the FFN gets
no gradient at all), while evaluation scores the block output y. ``ds_readout="block"`` (ours) passes
each ctx_t through the residual and FFN first, so training and evaluation read the same thing.

**Memory** (measured, never assumed). Per training step, with ``track_peak`` (CUDA: the allocator's
``max_memory_allocated`` after ``reset_peak_memory_stats``; CPU: PyTorch's ``MemTracker``), bytes
above what was allocated before the step:

- *model*: forward + loss + backward + clipping of the whole parser (the optimizer update is left
  out: its state is allocated once, at step 1, and is the same for every gradient mode).
- *PoH block alone*: right after the step, the block's forward and backward are re-run **in
  isolation** on the same (detached) block input, with the routing aux kept alive until the end of
  the forward as in the parser, the block's ``.grad`` set aside and restored (so the training
  step is untouched) and the RNG state forked (so training randomness is unchanged).

UAS = share of words whose predicted head (argmax, no tree constraint) is the gold head, over all
words (punctuation included, as published) and over words whose UPOS is not PUNCT.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np
import torch
from torch import nn

from potlib.memory import track_peak
from potlib.models.biaffine import BiaffinePointer, heads_tensor, pointer_loss
from potlib.models.encoder import DEFAULT_ENCODER, WordEncoder
from potlib.models.poh import GradMode, PoHBlock, VanillaBlock, deep_supervision_weights

BlockKind = Literal["vanilla", "poh"]
DSReadout = Literal["routed", "block"]
BatchOrder = Literal["file", "length_buckets"]
BATCH_ORDER_DOC = """How sentences are grouped into batches (a named choice; the words seen per epoch are the same).

- ``file``: consecutive sentences in file order, never shuffled (the original recipe). Measured on UD
  EWT train: padding is 2.9x the real words, and the cost of a step grows with the longest sentence.
- ``length_buckets`` (ours, for the 2-core ``cpu`` budget): sentences sorted by length (stable), cut
  into consecutive batches; the batch order of each training epoch is a permutation drawn from
  ``seed`` + epoch, so no length curriculum is imposed. Evaluation batches are the sorted ones.
  Because the original block attends over padding, batching changes outputs slightly: rows record
  ``batch_order``.
"""


def sentence_fields(s) -> tuple[Sequence[str], Sequence[int], Sequence[bool]]:
    """(words, heads, punct flags) of a ``potlib.data.ud.Sentence`` or a dict with the same keys."""
    get = s.get if isinstance(s, dict) else lambda k, d=None: getattr(s, k, d)
    words, heads = get("words"), get("heads")
    if words is None or heads is None or len(words) != len(heads):
        raise ValueError(f"sentence {s!r} needs parallel 'words' and 'heads'")
    upos = get("upos")
    punct = tuple(u == "PUNCT" for u in upos) if upos is not None else (False,) * len(words)
    return words, heads, punct


class Parser(nn.Module):
    """Encoder + block + biaffine pointer; ``forward`` returns the loss and what metrics need."""

    def __init__(
        self,
        encoder: str = DEFAULT_ENCODER,
        block: BlockKind = "poh",
        max_inner_iters: int = 1,
        grad_mode: GradMode = "full",
        deep_supervision: bool = False,
        ds_readout: DSReadout = "routed",
        routing_topk: int = 0,
        routing_tau: float = 0.7,
        n_heads: int = 8,
        d_ff: int = 2048,
        block_padding_mask: bool = False,
        halting: str = "fixed",
        ent_threshold: float = 0.8,
    ):
        super().__init__()
        if block not in ("vanilla", "poh"):
            raise ValueError(f"block = {block!r} is not allowed; allowed: 'vanilla', 'poh'")
        self.encoder = WordEncoder(encoder)
        d = self.encoder.hidden_size
        if block == "poh":
            self.block = PoHBlock(d, n_heads, d_ff, max_inner_iters, grad_mode, routing_tau, routing_topk,
                                  halting=halting, ent_threshold=ent_threshold)
        else:
            self.block = VanillaBlock(d, n_heads, d_ff)
        self.pointer = BiaffinePointer(d)
        self.deep_supervision = deep_supervision and block == "poh"
        self.ds_readout = ds_readout
        # The original never masks padding inside the block (attn_mask=None); True is the fix.
        self.block_padding_mask = block_padding_mask

    def forward(self, words, heads) -> dict:
        X, mask = self.encoder(words)  # (B, N, D), (B, N)
        gold = heads_tensor([list(h) for h in heads], X.size(1), X.device)  # (B, N)
        return self.head_loss(X, mask, gold)

    def head_loss(self, X, mask, gold) -> dict:
        kpm = mask if self.block_padding_mask else None
        collect = self.deep_supervision and self.training
        y, aux = self.block(X, key_padding_mask=kpm, collect_all=collect)  # (B, N, D)
        logits = self.pointer(y, mask)  # (B, N, N+1)
        if collect:
            w = deep_supervision_weights(len(aux["routed"]), X.device)
            states = aux["routed"] if self.ds_readout == "routed" else [self.block.finish(X, c) for c in aux["routed"]]
            loss = sum(w[t] * pointer_loss(self.pointer(s, mask), gold, mask) for t, s in enumerate(states))
        else:
            loss = pointer_loss(logits, gold, mask)
        # aux (and with it, under last_detach, the early iterations' graphs) dies when we return.
        iters = aux.get("inner_iters_used", 1)  # iterations the block actually ran (1 for vanilla)
        return {"loss": loss, "logits": logits, "mask": mask, "gold": gold, "block_input": X, "iters": iters}


def param_groups(model: Parser, lr: float, controller_mult: float, other_mult: float) -> list[dict]:
    """The published groups for PoH (encoder lr, controller mult x lr, rest mult x lr); one group
    for the vanilla parser, as in the original."""
    if not isinstance(model.block, PoHBlock):
        return [{"params": list(model.parameters()), "lr": lr}]
    enc = list(model.encoder.parameters())
    ctrl = list(model.block.controller.parameters())
    seen = {id(p) for p in enc + ctrl}
    other = [p for p in model.parameters() if id(p) not in seen]
    return [
        {"params": enc, "lr": lr},
        {"params": ctrl, "lr": lr * controller_mult},
        {"params": other, "lr": lr * other_mult},
    ]


def batches(sents: Sequence, batch_size: int, order: BatchOrder = "file", shuffle_seed: int | None = None):
    """Batches of (words, heads, punct flags); see ``BATCH_ORDER_DOC``. The last one may be short.

    ``shuffle_seed`` (``length_buckets`` only): permute the batch order with this seed; None keeps the
    sorted order (evaluation).
    """
    if order not in ("file", "length_buckets"):
        raise ValueError(f"order = {order!r} is not allowed; allowed: 'file', 'length_buckets'")
    idx = list(range(len(sents)))
    if order == "length_buckets":
        idx.sort(key=lambda i: len(sentence_fields(sents[i])[0]))  # stable: ties keep file order
    starts = list(range(0, len(idx), batch_size))
    if order == "length_buckets" and shuffle_seed is not None:
        perm = np.random.default_rng(shuffle_seed).permutation(len(starts))
        starts = [starts[k] for k in perm]
    for i in starts:
        chunk = [sentence_fields(sents[j]) for j in idx[i : i + batch_size]]
        yield [c[0] for c in chunk], [c[1] for c in chunk], [c[2] for c in chunk]


@torch.no_grad()
def evaluate(model: Parser, sents: Sequence, batch_size: int, order: BatchOrder = "file") -> dict:
    """UAS over all words and over non-punctuation words, in eval mode; mean inner iterations run."""
    model.eval()
    correct = total = correct_np = total_np = 0
    iters = []
    for words, heads, punct in batches(sents, batch_size, order):
        out = model(words, heads)
        iters.append(out["iters"])
        pred = out["logits"].argmax(-1)  # (B, N)
        mask = out["mask"]
        hit = (pred == out["gold"]) & mask
        p = torch.zeros_like(mask)
        for b, fl in enumerate(punct):
            p[b, : len(fl)] = torch.tensor(fl, dtype=torch.bool)
        keep = mask & ~p
        correct += int(hit.sum()); total += int(mask.sum())  # fmt: skip
        correct_np += int((hit & keep).sum()); total_np += int(keep.sum())  # fmt: skip
    model.train()
    return {
        "uas": correct / total if total else float("nan"),
        "uas_no_punct": correct_np / total_np if total_np else float("nan"),
        "words": total,
        "mean_inner_iters": float(np.mean(iters)) if iters else float("nan"),
    }


def block_peak(model: Parser, X: torch.Tensor, mask: torch.Tensor, device) -> int:
    """Peak bytes of the block's forward + backward alone, on the step's (detached) block input.

    The block's own ``.grad`` tensors are set aside and restored, so the measurement allocates
    fresh gradients exactly like a real step and leaves the training step untouched.
    """
    block = model.block
    params = [p for p in block.parameters() if p.requires_grad]
    saved = [p.grad for p in params]
    for p in params:
        p.grad = None
    kpm = mask if model.block_padding_mask else None
    collect = model.deep_supervision
    x = X.detach().requires_grad_(True)
    devices = [device] if torch.device(device).type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            with track_peak(device, (block,)) as peak:
                y, aux = block(x, key_padding_mask=kpm, collect_all=collect)
                s = y.sum()
                if collect:
                    s = s + sum(r.sum() for r in aux["routed"])
                del aux, y  # as in the parser: aux lives to the end of the forward only
                s.backward()
                del s
    finally:
        for p, g in zip(params, saved):
            p.grad = g
    return peak.bytes


@dataclass
class TrainResult:
    losses: list[float] = field(default_factory=list)
    model_peaks: list[int] = field(default_factory=list)
    block_peaks: list[int] = field(default_factory=list)
    dev_per_epoch: list[dict] = field(default_factory=list)  # evaluate() after each epoch
    inner_iters: list[int] = field(default_factory=list)  # iterations the block ran, per step
    memory_kind: str = ""
    diverged: bool = False
    seconds: float = 0.0


def train(
    model: Parser,
    train_sents: Sequence,
    dev_sents: Sequence,
    *,
    lr: float = 3e-5,
    weight_decay: float = 0.01,
    clip: float = 1.0,
    batch_size: int = 32,
    epochs: int = 3,
    controller_mult: float = 20.0,
    other_mult: float = 2.0,
    memory_every: int = 1,
    device: torch.device | str = "cpu",
    batch_order: BatchOrder = "file",
    seed: int = 0,
) -> TrainResult:
    """Train with the published recipe; dev UAS after each epoch (as the original logs it).

    ``batch_order``: see ``BATCH_ORDER_DOC`` (``seed`` draws the bucket order of each epoch).
    """
    device = torch.device(device)
    model.to(device).train()
    opt = torch.optim.AdamW(param_groups(model, lr, controller_mult, other_mult), lr=lr, weight_decay=weight_decay)
    res = TrainResult()
    start = time.perf_counter()
    step = 0
    for epoch in range(epochs):
        for words, heads, _p in batches(train_sents, batch_size, batch_order, shuffle_seed=seed * 1000 + epoch):
            opt.zero_grad(set_to_none=True)
            measure = memory_every > 0 and step % memory_every == 0
            if measure:
                with track_peak(device, (model,)) as pk:
                    out = model(words, heads)
                    loss = out["loss"]
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
                res.model_peaks.append(pk.bytes)
                res.memory_kind = pk.kind
                # The vanilla block is measured the same way, as the reference.
                res.block_peaks.append(block_peak(model, out["block_input"], out["mask"], device))
            else:
                out = model(words, heads)
                loss = out["loss"]
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            value = float(loss.detach())
            res.losses.append(value)
            res.inner_iters.append(int(out["iters"]))
            del out, loss
            if not math.isfinite(value):
                res.diverged = True
                res.seconds = time.perf_counter() - start
                return res
            opt.step()
            step += 1
        res.dev_per_epoch.append(evaluate(model, dev_sents, batch_size, batch_order))
    res.seconds = time.perf_counter() - start
    return res


def summarize_memory(values: list[int]) -> tuple[float | None, float | None]:
    """(max, mean) of per-step peaks; None when nothing was measured (not NaN, which means diverged)."""
    if not values:
        return None, None
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.max()), float(arr.mean())
