"""Credit experiments' capability to train same-shaped configs together (``--executor replicas``).

Not an experiment: ``credit_ladder`` and ``credit_cifar`` declare ``group_configs`` and a
``group_runner(their data builder)`` on their ``Experiment``, and the runner's ``replicas`` executor
uses them without knowing which chapter it runs. Training is :func:`potlib.credit.replicas.train_replicas`; rows
are written by the runner exactly as for single runs.
"""

from __future__ import annotations

import functools
from typing import Callable

import torch

from potlib.credit.replicas import VARYING, replica_groups, train_replicas
from potlib.credit.train import CreditConfig
from potlib.memory import track_peak
from potlib.runtime import Outcome

group_configs = replica_groups  # (configs, max_replicas) -> (groups, configs that train alone)


DataFn = Callable[[CreditConfig, torch.device], tuple[tuple[torch.Tensor, ...], dict]]


def group_runner(data_for: DataFn) -> Callable[[list[CreditConfig], torch.device], list[Outcome]]:
    """``run_group(configs, device)`` for an experiment whose ``data_for(cfg, device)`` returns
    ``(tensors, info)`` with ``info`` keys ``dataset``, ``sha256``, ``n_classes`` and ``extra`` (metrics)."""
    return functools.partial(run_group, data_for)


def run_group(data_for: DataFn, configs: list[CreditConfig], device: torch.device) -> list[Outcome]:
    """Train one replica group; one Outcome per config, in order (peak memory: the group's, CUDA only).

    Configs whose data differ (e.g. different α) are fine: each replica gets its own data. A replica
    whose loss went non-finite gets a NaN ``train_loss`` so that the runner records it as diverged.
    """
    cache: dict = {}
    sets, infos = [], []
    for c in configs:  # configs with the same data share one tensor set
        key = repr({k: v for k, v in c.to_dict().items() if k not in VARYING})
        if key not in cache:
            cache[key] = data_for(c, device)
        sets.append(cache[key][0])
        infos.append(cache[key][1])
    peak = kind = None
    if torch.device(device).type == "cuda":
        with track_peak(device) as pk:
            results = train_replicas(configs, sets, device, infos[0]["n_classes"])
        peak, kind = pk.bytes, pk.kind
    else:
        results = train_replicas(configs, sets, device, infos[0]["n_classes"])
    out = []
    for res, info in zip(results, infos):
        metrics = dict(res.metrics, **info["extra"])
        if res.diverged:
            metrics["train_loss"] = float("nan")
        out.append(Outcome(metrics, dict(res.artifacts), dataset=info["dataset"], dataset_sha256=info["sha256"],
                           peak_memory_bytes=peak, peak_memory_kind=kind))
    return out
