"""A toy experiment for the sweep tests: registered through POTLIB_EXTRA_EXPERIMENTS=toy=toy_experiment."""

import math
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np

from potlib.config import Config, grid
from potlib.errors import DataUnavailable
from potlib.experiments import Experiment
from potlib.runtime import Outcome


@dataclass(frozen=True)
class ToyConfig(Config):
    produce: Literal["ok", "nan", "error", "no_data"] = "ok"
    sleep: float = 0.0  # seconds, so a sweep can be killed midway


def run(cfg: ToyConfig, device) -> Outcome:
    time.sleep(cfg.sleep)
    if cfg.produce == "error":
        raise RuntimeError("toy failure")
    if cfg.produce == "no_data":
        raise DataUnavailable("toy data file /nowhere/toy.bin is missing")
    loss = math.nan if cfg.produce == "nan" else 0.5 + cfg.seed
    return Outcome({"loss": loss}, {"curve": np.arange(3.0)})


EXPERIMENT = Experiment(
    name="toy",
    title="toy",
    config_cls=ToyConfig,
    profiles={
        "smoke": lambda: grid(ToyConfig(), seed=(0, 1, 2)) + [ToyConfig(produce="nan"), ToyConfig(produce="error")],
        "cpu": lambda: grid(ToyConfig(sleep=0.4), seed=tuple(range(8))),
        "gpu": lambda: grid(ToyConfig(produce="no_data"), seed=(0, 1, 2)),
    },
    run=run,
)
