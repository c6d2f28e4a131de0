"""Experiment registry: one module per table or figure group.

Each module defines ``EXPERIMENT = Experiment(...)``: its config class, its named profiles
(``smoke`` and ``paper``, each a function returning the list of configs of its grid), and
``run(config) -> Outcome``. Modules are imported lazily so that ``potlib status`` stays fast.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from potlib.config import Config

PROFILES = ("smoke", "paper")

# name -> module path. Order is the book's order.
REGISTRY: dict[str, str] = {
    "hrm_depth_width": "potlib.experiments.hrm_depth_width",
    "hrm_layers_computed": "potlib.experiments.hrm_layers_computed",
    "hrm_act": "potlib.experiments.hrm_act",
    "hrm_dynamics": "potlib.experiments.hrm_dynamics",
    "hrm_memory": "potlib.experiments.hrm_memory",
    "gradflow_depth": "potlib.experiments.gradflow_depth",
    "gradflow_softmax": "potlib.experiments.gradflow_softmax",
    "gradflow_clipping": "potlib.experiments.gradflow_clipping",
    "frozen_context": "potlib.experiments.frozen_context",
}


@dataclass
class Outcome:
    """What a run returns: scalar metrics, optional arrays saved beside the row, dataset used."""

    metrics: dict[str, Any]
    artifacts: dict[str, np.ndarray] = field(default_factory=dict)
    dataset: str = "synthetic (generated from the seed)"
    dataset_sha256: str | None = None
    peak_memory_bytes: int | None = None
    peak_memory_kind: str | None = None


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str  # the figure or table it backs
    config_cls: type[Config]
    profiles: dict[str, Callable[[], list[Config]]]
    run: Callable[[Config], Outcome]
    chapter: str = ""
    uses_gpu: bool = False  # True: paper rows must come from a CUDA device

    def configs(self, profile: str) -> list[Config]:
        if profile not in self.profiles:
            raise UnknownProfileError(
                f"profile {profile!r} is not defined for experiment {self.name!r}; "
                f"allowed: {', '.join(sorted(self.profiles))}"
            )
        configs = self.profiles[profile]()
        from potlib.config import cfg_id

        ids = [cfg_id(self.name, c) for c in configs]
        if len(set(ids)) != len(ids):
            raise ValueError(f"profile {profile!r} of {self.name!r} lists the same config twice")
        return configs


class UnknownExperimentError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0])


class UnknownProfileError(ValueError):
    pass


def names() -> list[str]:
    return list(REGISTRY)


def get(name: str) -> Experiment:
    """The experiment called ``name``; a clear error listing the known ones otherwise."""
    if not isinstance(name, str) or name not in REGISTRY:
        raise UnknownExperimentError(
            f"unknown experiment {name!r}; known experiments: {', '.join(REGISTRY)}"
        )
    module = importlib.import_module(REGISTRY[name])
    return module.EXPERIMENT


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise UnknownProfileError(f"profile {profile!r} is not allowed; allowed: {', '.join(PROFILES)}")
    return profile
