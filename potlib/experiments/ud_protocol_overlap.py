"""The leak behind the published parser numbers: how much of each evaluation split was trained on.

Backs the overlap table of the parser chapter (SPEC sections 2 and 3.1; seed 000 section 7). The
original PoT loader reads every ``*.conllu`` file of the UD folder for both "train" and "dev", so the
published 97.9% UAS is scored on sentences the model trained on. This experiment runs the
``potlib.data.overlap`` report for both protocols of ``potlib.data.ud.protocol_splits``: identical
word sequences of each evaluation split found in the training split.

Needs UD English EWT v2.16 under POTLIB_DATA; no GPU. Runtime: smoke and paper ~5 s each on a
2-core CPU (parsing the treebank once; the paper grid is the smoke grid: it is a data fact).

    python -m potlib run ud_protocol_overlap --profile smoke
    python -m potlib run ud_protocol_overlap --profile paper
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from potlib.config import Config, grid
from potlib.experiments import Experiment
from potlib.runtime import Outcome


@dataclass(frozen=True)
class UDOverlapConfig(Config):
    protocol: Literal["published", "clean"] = "clean"  # see potlib.data.ud.protocol_splits
    eval_split: Literal["dev", "test"] = "dev"  # the split scored against train

    def check(self) -> None:
        self.require(not (self.protocol == "published" and self.eval_split == "test"), "eval_split",
                     "'dev' under the published protocol, which has no held-out test split")


def run(cfg: UDOverlapConfig, device: torch.device) -> Outcome:
    from potlib.data import ud
    from potlib.data.overlap import overlap_report

    splits = ud.protocol_splits(cfg.protocol)
    report = overlap_report(splits["train"], splits[cfg.eval_split], kind="sentences")
    info = ud.dataset_info()
    metrics = {
        "n_train": report.n_train,
        "n_eval": report.n_eval,
        "n_eval_in_train": report.n_eval_in_train,
        "fraction": report.fraction,
        "word_fraction": report.word_fraction,
        "examples": " | ".join(report.examples[:3]),
    }
    return Outcome(metrics, dataset=info["dataset"], dataset_sha256=info["sha256"])


def _grid() -> list[Config]:
    return [UDOverlapConfig(protocol="published")] + grid(UDOverlapConfig(protocol="clean"), eval_split=("dev", "test"))


EXPERIMENT = Experiment(
    name="ud_protocol_overlap",
    title="Overlap of UD English EWT evaluation splits with training, per protocol",
    config_cls=UDOverlapConfig,
    profiles={"smoke": _grid, "cpu": _grid},
    run=run,
    chapter="parser",
)
