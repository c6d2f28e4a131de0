"""Beyond the memo: the direct vector credit field (VF) on the ladder, beside the bridges.

The memo's recommended next step ("Option A", seed ``003_7472aaa848a17a76.txt``, Q4), published by
nobody: learn the credit vector ``a_φ(h, t, s) ∈ R^d`` directly instead of a scalar value whose
gradient is the credit (``potlib.credit.rules.VectorField``; its bootstrapped targets are our
reading of the memo's "Jacobian correction term").

Grid (``cpu``): VF at α = 1, L ∈ {4, 8}, seeds {42, 123, 456}, with every other setting equal to
the ladder's ``cpu`` grid (20 epochs), so the chapter compares VF with the ladder's BP, DFA, SB and
CB rows of the same configs; each with the bridges' target momentum (``ema`` 0.995) and a faster
one (0.9; a 5-epoch trial on the ladder gave Γ 0.71 vs 0.91 for the two): 12 runs, ~10 min on two
1-thread workers. ``gpu``: the same at 80 epochs.

    python -m potlib run credit_vector_field --profile smoke
    python -m potlib run credit_vector_field --profile cpu --executor local --workers 2
"""

from __future__ import annotations

from potlib.config import Config, grid
from potlib.experiments import Experiment
from potlib.experiments.credit_ladder import CPU_EPOCHS, SEEDS, SMOKE_BASE, LadderConfig, run

DEPTHS = (4, 8)
EMAS = (0.995, 0.9)  # target momentum: the bridges' value, and a faster target
BASE = LadderConfig(method="VF", alpha=1.0)

EXPERIMENT = Experiment(
    name="credit_vector_field",
    title="Direct vector credit field (the memo's Option A) on the ladder, α=1, L=4 and 8",
    config_cls=LadderConfig,
    profiles={
        "smoke": lambda: [SMOKE_BASE.replace(method="VF")],
        "cpu": lambda: grid(BASE.replace(epochs=CPU_EPOCHS), ema=EMAS, n_layers=DEPTHS, seed=SEEDS),
        "gpu": lambda: grid(BASE, ema=EMAS, n_layers=DEPTHS, seed=SEEDS),
    },
    run=run,
    chapter="credit_assignment",
    uses_gpu=True,
)
