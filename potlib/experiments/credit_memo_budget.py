"""The ladder's α = 1, L = 4 point at the memo's own budget (80 epochs, 3 seeds), every rule.

Backs the credit chapter's "at the memo's budget" table (seed ``003_7472aaa848a17a76.txt`` Phase 1;
published ``credit_bridge_phase1_ladder.csv``, row α = 1, L = 4: DFA Γ 0.05, SB 0.34, CB 0.45; CB
accuracy ≈ 0.52 in Phase 3). The ladder's ``cpu`` grid runs a quarter of the memo's epochs; this
experiment checks, at the one point the memo reports most fully, that the credit bridge's numbers
hold at the full 80 epochs under both readings of the credit scale: used as it is (``credit_norm =
"none"``, our default) and divided by its RMS (SPEC 3.3's reading, which collapses at 20 epochs,
see ``credit_collapse``).

Grid: BP, DFA, SB, CB, VF (the direct vector field, ``credit_vector_field``) and CB with RMS-normalised credit
× seeds {42, 123, 456}: 18 runs, ~25 min on two 1-thread workers of the 2-core machine (CB ~2.5 min
per run at 21 ms/step). The same grid is the ``gpu`` profile (it is the memo's budget already).

    python -m potlib run credit_memo_budget --profile smoke
    python -m potlib run credit_memo_budget --profile cpu --executor local --workers 2
"""

from __future__ import annotations

from potlib.config import Config
from potlib.experiments import Experiment
from potlib.experiments.credit_ladder import SEEDS, SMOKE_BASE, LadderConfig, run

MEMO_EPOCHS = 80
POINT = LadderConfig(alpha=1.0, n_layers=4, epochs=MEMO_EPOCHS)
SETTINGS: dict[str, dict] = {
    "BP": {"method": "BP"},
    "DFA": {"method": "DFA"},
    "SB": {"method": "SB"},
    "CB": {"method": "CB"},
    "VF": {"method": "VF"},
    "CB, credit normalised by RMS": {"method": "CB", "credit_norm": "rms"},
}


def setting(cfg: LadderConfig) -> str:
    """The name of ``cfg``'s setting in :data:`SETTINGS` (for tables), or "other"."""
    for name, changes in SETTINGS.items():
        if cfg.replace(seed=POINT.seed, epochs=POINT.epochs) == POINT.replace(**changes):
            return name
    return "other"


def _grid(base: LadderConfig) -> list[Config]:
    return [base.replace(seed=s, **c) for c in SETTINGS.values() for s in SEEDS]


def _smoke() -> list[Config]:
    return [SMOKE_BASE.replace(**c) for c in SETTINGS.values()]


EXPERIMENT = Experiment(
    name="credit_memo_budget",
    title="Ladder α=1, L=4 at the memo's 80 epochs: Γ, ρ, accuracy of every rule, 3 seeds",
    config_cls=LadderConfig,
    profiles={"smoke": _smoke, "cpu": lambda: _grid(POINT), "gpu": lambda: _grid(POINT)},
    run=run,
    chapter="credit_assignment",
    uses_gpu=True,
)
