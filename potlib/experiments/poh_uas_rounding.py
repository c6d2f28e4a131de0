"""How the original's UAS bookkeeping biases its reported UAS (chapter 3.1, a check of our own).

The original (Eran-BA/PoT ``ab_ud_pointer_vs_baseline.py`` at c0f1ee6, ``epoch()``) computes each
batch's UAS as a float32 mean, ``(pred == gold).float().mean().item()``, and accumulates
``int(uas * tokens)`` correct words per batch. ``float32(c / n) * n`` lands just below the integer
``c`` for about half of the possible counts, and ``int`` then drops a whole word: the reported UAS is
biased down by roughly half a word per batch. With ~500 words per batch of 32 sentences that is
~0.1 UAS points, more than the spread of the published table (97.90-97.95).

This simulation needs no model: for each batch of UD EWT ``split`` (32 sentences, file order, as
published) it draws the number of correct words from Binomial(words, p), computes the exact UAS and
the original's, and repeats ``draws`` times with ``seed``. Metrics: bias (original minus exact) in
UAS points, mean / std / min / max over draws. Runtime: ~1 s per config (measured, 2-core CPU).

    python -m potlib run poh_uas_rounding --profile cpu
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from potlib.config import Config
from potlib.experiments import Experiment
from potlib.runtime import Outcome


@dataclass(frozen=True)
class UASRoundingConfig(Config):
    seed: int = 0
    split: Literal["dev", "test", "train"] = "dev"
    accuracy: float = 0.9  # p, the parser's true per-word accuracy
    batch_size: int = 32  # sentences per batch, as published
    draws: int = 200  # simulated evaluations

    def check(self) -> None:
        self.require(0.0 <= self.accuracy <= 1.0, "accuracy", "a float in [0, 1]")
        self.require(self.batch_size >= 1, "batch_size", "an int >= 1")
        self.require(self.draws >= 1, "draws", "an int >= 1")


def original_correct(correct: int, tokens: int) -> int:
    """Correct words one batch adds to the original's total: ``int(float32 mean * tokens)``."""
    hits = torch.zeros(tokens, dtype=torch.bool)
    hits[:correct] = True
    return int(hits.float().mean().item() * tokens)


def run(cfg: UASRoundingConfig, device: torch.device) -> Outcome:
    from potlib.data.ud import dataset_info, load_ud_ewt

    sents = load_ud_ewt(cfg.split)
    words = np.asarray([sum(len(s.words) for s in sents[i : i + cfg.batch_size])
                        for i in range(0, len(sents), cfg.batch_size)])
    rng = np.random.default_rng(cfg.seed)
    bias = np.empty(cfg.draws)
    for d in range(cfg.draws):
        correct = rng.binomial(words, cfg.accuracy)
        reported = sum(original_correct(int(c), int(n)) for c, n in zip(correct, words))
        bias[d] = 100.0 * (reported - correct.sum()) / words.sum()
    ds = dataset_info()
    return Outcome(
        metrics={"bias_points_mean": float(bias.mean()), "bias_points_std": float(bias.std()),
                 "bias_points_min": float(bias.min()), "bias_points_max": float(bias.max()),
                 "batches": int(words.size), "mean_words_per_batch": float(words.mean())},
        artifacts={"bias_points": bias},
        dataset=ds["dataset"], dataset_sha256=ds["sha256"],
    )


def _cpu() -> list[UASRoundingConfig]:
    return [UASRoundingConfig(accuracy=p) for p in (0.7, 0.8, 0.9, 0.95, 0.98)]


def _smoke() -> list[UASRoundingConfig]:
    return [UASRoundingConfig(accuracy=0.9, draws=5)]


PROFILES = {"smoke": _smoke, "cpu": _cpu}

EXPERIMENT = Experiment(
    name="poh_uas_rounding",
    title="PoH parser: bias of the original's per-batch int(uas * tokens) bookkeeping (simulation)",
    config_cls=UASRoundingConfig,
    profiles=PROFILES,
    run=run,
    chapter="3.1",
)
