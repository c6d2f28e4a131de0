"""Phase 2 of the credit-bridge memos: CIFAR-10 depth scan of BP, DFA, credit bridge and state bridge.

Backs the credit-assignment chapter's CIFAR table (SPEC 3.3, seed ``003_7472aaa848a17a76.txt``
Phase 2; published ``credit_bridge_phase2_cifar.csv`` and ``credit_bridge_context.csv``). Flattened
CIFAR-10 images (3072 inputs, normalised) into the residual MLP with d = 512, L ∈ {2, 4, 6, 8, 12},
100 epochs, AdamW lr 1e-3 wd 0.01 cosine, batch 128, seed 42; Γ and ρ on 1024 test images.
In this workplace the data are "CIFAR-10 (JPEG-q75)" (SPEC 2); the row's dataset field says which.

``dataset = "fake"`` swaps in a small random dataset of the same shape (labels from a random linear
map) so the code path can be tested where CIFAR-10 is absent; the paper grid never uses it.

Profiles: ``gpu`` is the memo's grid (20 runs, 100 epochs). ``cpu`` is the same grid at 10 epochs:
measured 1-thread step costs at L = 2 / 12 are BP 35 / 124, DFA 24 / 80, SB 41 / 141, CB 47 / 156 ms,
~1 h on two 1-thread workers of the 2-core machine. Smoke (4 runs on 512 images) ~7 s wall
including start-up once the CIFAR cache exists (the first decode of the JPEG archive takes ~14 s).

    python -m potlib run credit_cifar --profile smoke
    python -m potlib run credit_cifar --profile cpu --executor local --workers 2
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Literal

import torch

from potlib.config import Config, grid
from potlib.credit.train import CreditConfig, train_measured
from potlib.experiments import Experiment, credit_groups
from potlib.runtime import Diverged, Outcome


@dataclass(frozen=True)
class CifarConfig(CreditConfig):
    d: int = 512  # state width (memo Phase 2)
    epochs: int = 100
    dataset: Literal["cifar10", "fake"] = "cifar10"  # "fake": random stand-in for tests only
    n_train: int = 0  # training images; 0 means all 50,000 (smoke uses a subset)
    n_test: int = 0  # test images; 0 means all 10,000

    def check(self) -> None:
        super().check()
        self.require(self.n_train >= 0, "n_train", "an int >= 0 (0 means all)")
        self.require(self.n_test >= 0, "n_test", "an int >= 0 (0 means all)")
        self.require(self.n_train == 0 or self.n_train >= self.batch_size, "n_train",
                     f"0 (all) or an int >= batch_size ({self.batch_size})")


def fake_cifar(n: int, split: str, device) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Random (n, 3, 32, 32) images, labels = argmax of a fixed random linear map: tests only."""
    g = torch.Generator().manual_seed(0)
    w = torch.randn(3 * 32 * 32, 10, generator=g)
    g.manual_seed(1 if split == "train" else 2)
    x = torch.randn(n, 3, 32, 32, generator=g)
    y = (x.flatten(1) @ w).argmax(-1)
    sha = hashlib.sha256(x.numpy().tobytes() + y.numpy().tobytes()).hexdigest()
    return x.to(device), y.to(device), {"dataset": "fake CIFAR-shaped data (tests only)", "sha256": sha}


@functools.lru_cache(maxsize=2)
def _cifar(split: str, device: str, limit: int | None):
    """One CIFAR-10 split on ``device``, kept for the next config of an in-process sweep.

    The tensors are never modified in place (batches are gathered copies), so sharing is safe.
    """
    from potlib.data.cifar import cifar10_tensors

    return cifar10_tensors(split, device, limit=limit)


def load(cfg: CifarConfig, device) -> tuple[tuple[torch.Tensor, ...], dict]:
    """``((x_train, y_train, x_test, y_test), info)`` with images flattened to (N, 3072)."""
    if cfg.dataset == "fake":
        x_tr, y_tr, info = fake_cifar(cfg.n_train or 512, "train", device)
        x_te, y_te, _ = fake_cifar(cfg.n_test or 256, "test", device)
    else:
        x_tr, y_tr, info = _cifar("train", str(device), cfg.n_train or None)
        x_te, y_te, info_te = _cifar("test", str(device), cfg.n_test or None)
        sha = info.get("sha256")
        if info_te.get("sha256") not in (None, sha):  # per-split hashes: keep both
            sha = f"{sha}+{info_te['sha256']}"
        info = dict(info, sha256=sha)
    return (x_tr.flatten(1), y_tr, x_te.flatten(1), y_te), info  # (N, 3072)


def data_for(cfg: CifarConfig, device: torch.device) -> tuple[tuple[torch.Tensor, ...], dict]:
    """Tensors for ``cfg`` and what a row records about them (for replica groups)."""
    data, info = load(cfg, device)
    return data, {"dataset": info["dataset"], "sha256": info.get("sha256"), "n_classes": 10, "extra": {}}


def run(cfg: CifarConfig, device: torch.device) -> Outcome:
    data, info = load(cfg, device)
    result, peak, kind = train_measured(cfg, data, device, n_classes=10)
    if result.diverged:
        raise Diverged("non-finite loss during training", result.metrics, result.artifacts)
    return Outcome(result.metrics, result.artifacts, dataset=info["dataset"], dataset_sha256=info.get("sha256"),
                   peak_memory_bytes=peak, peak_memory_kind=kind)


METHODS = ("BP", "DFA", "CB", "SB")
SMOKE_BASE = CifarConfig(
    d=32, n_layers=2, epochs=1, n_train=512, n_test=256, batch_size=64, aux_width=32,
    metric_samples=32, metric_dirs=4, seed=42, wr=0.0,  # wr=0: one epoch still trains on bridge credit
)


def _smoke() -> list[Config]:
    return grid(SMOKE_BASE, method=METHODS)


DEPTHS = (2, 4, 6, 8, 12)
CPU_EPOCHS = 10  # a tenth of the memo's 100: the grid fits in ~1 h on two cores


def _gpu() -> list[Config]:
    return grid(CifarConfig(seed=42), n_layers=DEPTHS, method=METHODS)


def _cpu() -> list[Config]:
    return grid(CifarConfig(seed=42, epochs=CPU_EPOCHS), n_layers=DEPTHS, method=METHODS)


EXPERIMENT = Experiment(
    name="credit_cifar",
    title="CIFAR-10 depth scan: accuracy, Γ and ρ of BP/DFA/CB/SB vs depth",
    config_cls=CifarConfig,
    profiles={"smoke": _smoke, "cpu": _cpu, "gpu": _gpu},
    run=run,
    chapter="credit_assignment",
    uses_gpu=True,
    # configs of equal shape train together as stacked replicas (--executor replicas): BP and DFA in one group,
    # SB and CB each in groups of their own (potlib.credit.replicas)
    group_configs=credit_groups.group_configs,
    run_group=credit_groups.group_runner(data_for),
)
