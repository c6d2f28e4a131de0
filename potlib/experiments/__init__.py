"""Experiment registry: one module per table or figure group.

Each module defines ``EXPERIMENT = Experiment(...)``: its config class, its named profiles (``smoke``,
``cpu`` and, where a GPU budget exists, ``gpu``; each a function returning the list of configs of its
grid) and ``run(config, device) -> Outcome`` (the runner picks the device once and passes it down).
Modules are imported lazily so that ``potlib status`` stays fast.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Any, Callable

from potlib.config import PROFILES, Config
from potlib.runtime import Outcome

__all__ = ["PROFILES", "Experiment", "Outcome", "get", "names", "check_profile"]


# name -> module path. Order is the book's order.
REGISTRY: dict[str, str] = {
    "ud_protocol_overlap": "potlib.experiments.ud_protocol_overlap",
    "poh_gradient_modes": "potlib.experiments.poh_gradient_modes",
    "poh_memory": "potlib.experiments.poh_memory",
    "poh_uas_rounding": "potlib.experiments.poh_uas_rounding",
    "gradient_modes_theory": "potlib.experiments.gradient_modes_theory",
    "hrm_depth_width": "potlib.experiments.hrm_depth_width",
    "hrm_layers_computed": "potlib.experiments.hrm_layers_computed",
    "hrm_act": "potlib.experiments.hrm_act",
    "hrm_dynamics": "potlib.experiments.hrm_dynamics",
    "hrm_memory": "potlib.experiments.hrm_memory",
    "credit_ladder": "potlib.experiments.credit_ladder",
    "credit_cifar": "potlib.experiments.credit_cifar",
    "credit_ablations": "potlib.experiments.credit_ablations",
    "credit_collapse": "potlib.experiments.credit_collapse",
    "credit_memo_budget": "potlib.experiments.credit_memo_budget",
    "credit_vector_field": "potlib.experiments.credit_vector_field",
    "hrm_original_choices": "potlib.experiments.hrm_original_choices",
    "gradflow_depth": "potlib.experiments.gradflow_depth",
    "gradflow_softmax": "potlib.experiments.gradflow_softmax",
    "gradflow_clipping": "potlib.experiments.gradflow_clipping",
    "frozen_context": "potlib.experiments.frozen_context",
    "bench": "potlib.experiments.bench",
    "bench_hrm": "potlib.experiments.bench_hrm",
}


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str  # the figure or table it backs
    config_cls: type[Config]
    profiles: dict[str, Callable[[], list[Config]]]
    run: Callable[[Config, Any], Outcome]  # run(config, device: torch.device) -> Outcome
    chapter: str = ""
    uses_gpu: bool = False  # True: runs on a GPU when there is one, and its gpu rows must come from one
    # True for a timing experiment (the benches): its runs measure the machine, worker processes of their own
    # included, so a sweep runs them one at a time with nothing beside them
    runs_alone: bool = False
    # torch threads each run computes with on a CPU, whatever its process holds (``executors.run_one`` and
    # ``run_group`` set them around the run and its row, so the row's provenance names them): 1 for the benches, which
    # time the sweeps' one-thread arrangement, and for the theory check, whose tiny tensors run slower on two. None:
    # the process's
    cpu_threads: int | None = None
    # Optional capability: train same-shaped configs together (``--executor replicas``).
    # group_configs(configs, max_group) -> (groups, configs that run alone); run_group(group, device) -> Outcomes
    group_configs: Callable[[list, int], tuple[list[list], list]] | None = None
    run_group: Callable[[list, Any], list[Outcome]] | None = None

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


def _extra() -> dict[str, str]:
    """Experiments of the user's own, registered as POTLIB_EXTRA_EXPERIMENTS="name=module.path,...".

    They run through the same sweeps, store and CLI as the built-in ones (the tests use this too).
    """
    out = {}
    for item in filter(None, os.environ.get("POTLIB_EXTRA_EXPERIMENTS", "").split(",")):
        name, sep, module = item.partition("=")
        if not sep or not name.strip() or not module.strip():
            raise ValueError(f"POTLIB_EXTRA_EXPERIMENTS item {item!r} is not of the form name=module.path")
        out[name.strip()] = module.strip()
    return out


def _registry() -> dict[str, str]:
    return {**REGISTRY, **_extra()}


def names() -> list[str]:
    return list(_registry())


def get(name: str) -> Experiment:
    """The experiment called ``name``; a clear error listing the known ones otherwise."""
    registry = _registry()
    if not isinstance(name, str) or name not in registry:
        raise UnknownExperimentError(
            f"unknown experiment {name!r}; known experiments: {', '.join(registry)}"
        )
    module = importlib.import_module(registry[name])
    return module.EXPERIMENT


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise UnknownProfileError(f"profile {profile!r} is not allowed; allowed: {', '.join(PROFILES)}")
    return profile
