"""One training loop for every credit rule and all three credit experiments (SPEC 3.3).

Per step: the local forward pass (each block sees a detached input), the terminal quantities
(``e_T``, ``δ_L``, CE through the head), the rule's credit ``a_l`` (divided by its RMS when
``credit_norm = "rms"``), then one AdamW step on ``CE(head) + Σ_l mean_batch <F_l(h_{l−1}), a_l>`` (each term reaches only its own
parameters) and, for the bridges, one step of the rule's own networks on their auxiliary loss.

The data live on the device as whole tensors; an epoch is a random permutation cut into full
batches (the ragged tail is dropped), indexed directly: no DataLoader, no host round trips
except one ``.item()`` per epoch. ``train_step`` depends only on (model, rule, optimisers, batch),
so a later batched-replica version can wrap it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from potlib.config import Config
from potlib.credit.metrics import credit_metrics
from potlib.credit.rules import CreditRule, local_surrogate, make_rule, normalise_credit, terminal_pass
from potlib.models.resmlp import ResMLP


@dataclass(frozen=True)
class CreditConfig(Config):
    """Fields shared by the credit experiments: network, optimiser, rule and metric settings."""

    method: Literal["BP", "DFA", "SB", "CB", "VF"] = "CB"  # credit rule (potlib.credit.rules)
    n_layers: int = 4  # residual blocks L
    d: int = 128  # state width
    d_ff: int = 0  # hidden width of F_l; 0 means d [reconstructed]
    epochs: int = 80
    batch_size: int = 128
    lr: float = 1e-3  # AdamW learning rate of the forward net (SPEC: CIFAR setting, used everywhere)
    weight_decay: float = 0.01
    schedule: Literal["cosine", "constant"] = "cosine"  # per-step schedule of lr
    # "none": credit at its own scale, as Nøkland's DFA and backprop; "rms": a / (RMS(a) + 1e-6) per layer,
    # SPEC 3.3's reading, under which the credit bridge collapses (experiment credit_collapse)
    credit_norm: Literal["none", "rms"] = "none"
    # -- bridges (SB, CB) and the vector field (VF) --
    s_type: Literal["eT", "deltaL", "eT+proj", "deltaL+proj"] = "eT"  # terminal conditioning code s
    wr: float = 0.2  # fraction of epochs trained with DFA credit while the bridge net learns
    aux_width: int = 256  # width of the value net / state predictor (3 Linear layers)
    aux_lr: float = 1e-3  # Adam learning rate of the bridge net, constant [reconstructed]
    # -- credit bridge only --
    tgw: float = 1.0  # terminal gradient matching weight
    bridge_lambda: float = 0.1  # λ of the soft-min bridge target
    bridge_k: int = 4  # noise samples K
    bridge_sigma: float = 0.05  # noise scale σ
    ema: float = 0.995  # momentum of the target value net (CB) or target field (VF)
    # -- metrics --
    metric_samples: int = 1024  # test samples for Γ and ρ
    metric_dirs: int = 32  # random directions per sample for ρ
    metric_eps: float = 1e-3  # finite-difference step ε of ρ

    def check(self) -> None:
        r = self.require
        r(1 <= self.n_layers <= 64, "n_layers", "an int in [1, 64]")
        r(self.d >= 2, "d", "an int >= 2")
        r(self.d_ff >= 0, "d_ff", "an int >= 0 (0 means d)")
        r(self.epochs >= 1, "epochs", "an int >= 1")
        r(self.batch_size >= 1, "batch_size", "an int >= 1")
        r(self.lr > 0, "lr", "a float > 0")
        r(self.weight_decay >= 0, "weight_decay", "a float >= 0")
        r(0.0 <= self.wr <= 1.0, "wr", "a fraction in [0, 1]")
        r(self.aux_width >= 1, "aux_width", "an int >= 1")
        r(self.aux_lr > 0, "aux_lr", "a float > 0")
        r(self.tgw >= 0, "tgw", "a float >= 0")
        r(self.bridge_lambda > 0, "bridge_lambda", "a float > 0")
        r(self.bridge_k >= 1, "bridge_k", "an int >= 1")
        r(self.bridge_sigma >= 0, "bridge_sigma", "a float >= 0")
        r(0.0 <= self.ema < 1.0, "ema", "a float in [0, 1)")
        r(self.metric_samples >= 2, "metric_samples", "an int >= 2")
        r(self.metric_dirs >= 1, "metric_dirs", "an int >= 1")
        r(self.metric_eps > 0, "metric_eps", "a float > 0")


def build(cfg: CreditConfig, d_in: int, n_classes: int, device) -> tuple[ResMLP, CreditRule]:
    """The student network and the credit rule of ``cfg`` on ``device`` (init from the global seed)."""
    model = ResMLP(d_in, cfg.d, cfg.n_layers, n_classes, cfg.d_ff or None).to(device)
    rule = make_rule(
        cfg.method, d=cfg.d, n_layers=cfg.n_layers, n_classes=n_classes, seed=cfg.seed, s_type=cfg.s_type,
        wr=cfg.wr, width=cfg.aux_width, tgw=cfg.tgw, lam=cfg.bridge_lambda, k=cfg.bridge_k,
        sigma=cfg.bridge_sigma, ema=cfg.ema,
    ).to(device)
    return model, rule


def train_step(model: ResMLP, rule: CreditRule, opt, aux_opt, x: Tensor, y: Tensor, progress: float,
               credit_norm: str = "none") -> tuple[Tensor, Tensor]:
    """One update of the forward net (and of the rule's nets); returns (mean CE, aux loss) tensors."""
    hs, fs = model.local_forward(x)
    p, ce = terminal_pass(model, x, y, hs)
    a = normalise_credit(rule.credit(model, p, progress), credit_norm)  # (L+1, B, d)
    loss = ce.mean() + local_surrogate(hs[0], fs, a)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    aux = torch.zeros((), device=x.device)
    if aux_opt is not None:
        aux = rule.aux_loss(p, model)
        aux_opt.zero_grad(set_to_none=True)
        aux.backward()
        aux_opt.step()
        rule.after_aux_step()
    return ce.detach().mean(), aux.detach()


@torch.no_grad()
def evaluate(model: ResMLP, x: Tensor, y: Tensor, chunk: int = 4096) -> tuple[float, float]:
    """(accuracy, mean CE) on ``(x, y)``."""
    correct, loss = torch.zeros((), device=x.device), torch.zeros((), device=x.device)
    for i in range(0, x.shape[0], chunk):
        logits = model(x[i : i + chunk])
        correct += (logits.argmax(-1) == y[i : i + chunk]).sum()
        loss += F.cross_entropy(logits, y[i : i + chunk], reduction="sum")
    n = x.shape[0]
    return float(correct) / n, float(loss) / n


@dataclass
class TrainResult:
    metrics: dict = field(default_factory=dict)
    artifacts: dict = field(default_factory=dict)
    diverged: bool = False


def train(cfg: CreditConfig, data: tuple[Tensor, Tensor, Tensor, Tensor], device,
          n_classes: int | None = None) -> TrainResult:
    """Train ``cfg.method`` on ``data = (x_train, y_train, x_test, y_test)`` (on ``device``).

    ``n_classes`` defaults to the largest label + 1.

    Metrics: final test accuracy and CE, last-epoch train CE, Γ and ρ (means over layers l ≥ 1 and
    per-layer lists) on the first ``metric_samples`` test examples, mean ‖h_L‖. Artifacts: per-epoch
    curves (train CE, test accuracy, test CE, Γ of the rule's own credit, auxiliary loss, mean ‖h_l‖
    per layer) and the per-layer Γ and ρ. The per-epoch Γ uses ``progress = 1`` so that it follows
    the bridge net during warmup.
    """
    x_tr, y_tr, x_te, y_te = data
    n_classes = n_classes or int(max(int(y_tr.max()), int(y_te.max())) + 1)
    model, rule = build(cfg, x_tr.shape[1], n_classes, device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    aux_params = rule.aux_parameters()
    aux_opt = torch.optim.Adam(aux_params, lr=cfg.aux_lr) if aux_params else None

    n = x_tr.shape[0]
    bs = min(cfg.batch_size, n)
    steps_per_epoch = n // bs
    total = steps_per_epoch * cfg.epochs
    if cfg.schedule == "cosine":
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    else:
        sched = None
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    metric_gen = torch.Generator(device=device).manual_seed(cfg.seed + 1)
    m = min(cfg.metric_samples, x_te.shape[0])
    x_m, y_m = x_te[:m], y_te[:m]

    curves = {k: [] for k in ("train_loss", "test_acc", "test_loss", "gamma", "aux_loss")}
    norms: list[list[float]] = []  # per epoch, mean ‖h_l‖ for l = 0..L on the metric batch
    diverged = False
    for epoch in range(cfg.epochs):
        progress = epoch / cfg.epochs
        perm = torch.randperm(n, device=device, generator=gen)[: steps_per_epoch * bs].view(steps_per_epoch, bs)
        ce_sum = torch.zeros((), device=device)
        aux_sum = torch.zeros((), device=device)
        for idx in perm:
            ce, aux = train_step(model, rule, opt, aux_opt, x_tr[idx], y_tr[idx], progress, cfg.credit_norm)
            ce_sum += ce
            aux_sum += aux
            if sched is not None:
                sched.step()
        train_loss = float(ce_sum) / steps_per_epoch
        acc, test_loss = evaluate(model, x_te, y_te)
        gamma = credit_metrics(model, rule, x_m, y_m, with_rho=False)["gamma"]
        with torch.no_grad():  # residual-stream growth: the failure mode of a noisy credit
            norms.append([float(h.norm(dim=-1).mean()) for h in model.states(x_m)])
        for k, v in (("train_loss", train_loss), ("test_acc", acc), ("test_loss", test_loss),
                     ("gamma", gamma), ("aux_loss", float(aux_sum) / steps_per_epoch)):
            curves[k].append(v)
        if not (math.isfinite(train_loss) and math.isfinite(test_loss)):
            diverged = True
            break

    artifacts = {f"epoch_{k}": np.asarray(v, dtype=np.float64) for k, v in curves.items()}
    artifacts["epoch_state_norm"] = np.asarray(norms, dtype=np.float64)  # (epochs, L+1)
    metrics = {
        "test_acc": curves["test_acc"][-1],
        "test_loss": curves["test_loss"][-1],
        "train_loss": curves["train_loss"][-1],
        "epochs_run": len(curves["train_loss"]),
        "state_norm_last": norms[-1][-1],  # mean ‖h_L‖ after training
    }
    if diverged:
        metrics.update(gamma=float("nan"), rho=float("nan"))
        return TrainResult(metrics, artifacts, diverged=True)
    cm = credit_metrics(model, rule, x_m, y_m, eps=cfg.metric_eps, n_dirs=cfg.metric_dirs, generator=metric_gen)
    metrics.update(cm)
    artifacts["gamma_per_layer"] = np.asarray(cm["gamma_per_layer"])
    artifacts["rho_per_layer"] = np.asarray(cm["rho_per_layer"])
    return TrainResult(metrics, artifacts)


def train_measured(cfg: CreditConfig, data, device, n_classes: int | None = None
                   ) -> tuple[TrainResult, int | None, str | None]:
    """:func:`train` with the peak memory on CUDA (``torch.cuda.max_memory_allocated``).

    On the CPU the peak is not measured: PyTorch's MemTracker cannot follow ``autograd.grad`` on
    leaf tensors, which every credit rule uses, so rows carry ``None`` rather than a wrong number.
    """
    device = torch.device(device)
    if device.type != "cuda":
        return train(cfg, data, device, n_classes), None, None
    from potlib.memory import track_peak

    with track_peak(device) as peak:
        result = train(cfg, data, device, n_classes)
    return result, peak.bytes, peak.kind
