"""Phase 3 of the credit-bridge memos: boundary-condition ablations of the credit bridge.

Backs the credit-assignment chapter's ablation tables (SPEC 3.3, seed ``003_7472aaa848a17a76.txt``
Phase 3; published ``credit_bridge_phase3_ablations.csv``). Credit bridge on the ladder task with
α = 1, L = 4, seeds {42, 123, 456}, varying one setting at a time from the default
(s_type = eT, tgw = 1, wr = 0.2):

- A. conditioning ``s_type`` ∈ {eT, deltaL, eT+proj, deltaL+proj};
- B. terminal gradient matching weight ``tgw`` ∈ {0, 0.25, 1, 4};
- C. DFA warmup ratio ``wr`` ∈ {0, 0.05, 0.2, 0.5}, for s_type eT and for deltaL.

Shared settings coincide (e.g. eT/tgw 1/wr 0.2 belongs to A, B and C), so each is run once: 13
settings × 3 seeds = 39 runs; the notebook selects each table's rows by its axis. Same config class,
data and training loop as ``credit_ladder``. Profiles: ``gpu`` at the memo's 80 epochs; ``cpu`` at
the ladder's ``cpu`` budget (20 epochs, ~50 min on two 1-thread workers of the 2-core machine);
smoke (4 runs) ~6 s wall including start-up.

    python -m potlib run credit_ablations --profile smoke
    python -m potlib run credit_ablations --profile cpu --executor local --workers 2
"""

from __future__ import annotations

from potlib.config import Config, grid
from potlib.experiments import Experiment
from potlib.experiments.credit_ladder import CPU_EPOCHS, SEEDS, SMOKE_BASE, LadderConfig, run

S_TYPES = ("eT", "deltaL", "eT+proj", "deltaL+proj")
TGWS = (0.0, 0.25, 1.0, 4.0)
WRS = (0.0, 0.05, 0.2, 0.5)


def settings(base: LadderConfig) -> list[LadderConfig]:
    """The union of the three ablation axes around ``base``, each setting once, in table order."""
    out: list[LadderConfig] = []
    candidates = (
        grid(base, s_type=S_TYPES)
        + grid(base, tgw=TGWS)
        + grid(base, s_type=("eT", "deltaL"), wr=WRS)
    )
    for c in candidates:
        if c not in out:
            out.append(c)
    return out


def _smoke() -> list[Config]:
    return grid(SMOKE_BASE.replace(method="CB"), s_type=S_TYPES)


def _seeded(base: LadderConfig) -> list[Config]:
    return [c.replace(seed=s) for c in settings(base) for s in SEEDS]


BASE = LadderConfig(method="CB", alpha=1.0, n_layers=4)


EXPERIMENT = Experiment(
    name="credit_ablations",
    title="Credit bridge ablations: conditioning code, terminal gradient matching, DFA warmup",
    config_cls=LadderConfig,
    profiles={"smoke": _smoke, "cpu": lambda: _seeded(BASE.replace(epochs=CPU_EPOCHS)), "gpu": lambda: _seeded(BASE)},
    run=run,
    chapter="credit_assignment",
    uses_gpu=True,
)
