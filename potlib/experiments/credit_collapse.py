"""Why the credit bridge's credit quality falls as training goes on: a one-knob-at-a-time ablation.

Issue: on the ladder at α = 1, L = 4 the credit bridge (CB) was measured with Γ falling from 0.12 to
0.08 between 20 and 40 epochs, test accuracy with it, and the residual-stream norm ‖h_L‖ growing from
~16 to ~2300, while the memo (seed ``003_7472aaa848a17a76.txt``, Phase 3) reports Γ 0.45 and
accuracy 0.52 for this setting. The same value net reaches Γ 0.85-1.0 on a frozen network, so the
suspect is the closed loop between the forward net and the value net.

Each config changes one [reconstructed] piece of SPEC 3.3's reading of the memo's recipe
(``potlib.credit.rules``; credit divided by its RMS) and records the per-epoch curves (``epoch_gamma``, ``epoch_test_acc``, ``epoch_state_norm``)
beside the final Γ, ρ and accuracy:

- ``credit_norm = none``: credit used at its own scale (Nøkland's DFA never normalises; SPEC 3.3's
  reading divides every layer's credit by its RMS). This reading matched the memo and became the
  default of every credit experiment; ``rms`` stays a named option;
- ``ema`` 0.9: a faster target value net (default 0.995);
- ``aux_lr`` 3e-4 / 3e-3: a slower or faster value net (default 1e-3);
- ``tgw`` 0 / 4: no or stronger terminal gradient matching (default 1);
- ``weight_decay`` 0 / 0.1 on the forward net (default 0.01): a bound on the state norm by decay;
- ``wr`` 0: no DFA warmup (default 0.2);
- ``lr`` 3e-4: a slower forward net (default 1e-3);
- references at the same budget: BP, DFA, and DFA without normalisation.

Budget (cpu): 20 epochs (memo: 80), seed 42, the ladder's data (10k train, 2k test, d = 128):
15 runs; measured ~1-2 min each on one thread of the 2-core machine.

    python -m potlib run credit_collapse --profile smoke
    python -m potlib run credit_collapse --profile cpu
"""

from __future__ import annotations

from potlib.config import Config
from potlib.experiments import Experiment
from potlib.experiments.credit_ladder import SMOKE_BASE, LadderConfig, run

BASELINE = "credit normalised by RMS (SPEC 3.3)"  # the setting every knob changes one piece of
KNOBS: dict[str, dict] = {
    BASELINE: {},
    "credit not normalised": {"credit_norm": "none"},
    "target EMA 0.9": {"ema": 0.9},
    "value-net lr 3e-4": {"aux_lr": 3e-4},
    "value-net lr 3e-3": {"aux_lr": 3e-3},
    "no terminal gradient matching": {"tgw": 0.0},
    "terminal gradient matching x4": {"tgw": 4.0},
    "no weight decay": {"weight_decay": 0.0},
    "weight decay 0.1": {"weight_decay": 0.1},
    "no DFA warmup": {"wr": 0.0},
    "forward lr 3e-4": {"lr": 3e-4},
}
REFERENCES: dict[str, dict] = {
    "BP": {"method": "BP"},
    "DFA": {"method": "DFA"},
    "DFA, not normalised": {"method": "DFA", "credit_norm": "none"},
}


def knob(cfg: LadderConfig, base: LadderConfig) -> str:
    """The name of the setting ``cfg`` changes from ``base`` (for tables and figures)."""
    for name, changes in {**KNOBS, **REFERENCES}.items():
        if cfg == base.replace(**{"method": "CB", **changes}):
            return name
    return "other"


def _grid(base: LadderConfig) -> list[Config]:
    return [base.replace(**{"method": "CB", **c}) for c in KNOBS.values()] + [base.replace(**c) for c in REFERENCES.values()]


CPU_BASE = LadderConfig(method="CB", alpha=1.0, n_layers=4, epochs=20, seed=42, credit_norm="rms")


def _smoke() -> list[Config]:
    base = SMOKE_BASE.replace(method="CB", credit_norm="rms")
    return [base, base.replace(credit_norm="none"), base.replace(method="DFA")]


EXPERIMENT = Experiment(
    name="credit_collapse",
    title="Credit bridge: which piece of the closed loop makes Γ fall during training (ladder, α=1, L=4)",
    config_cls=LadderConfig,
    profiles={"smoke": _smoke, "cpu": lambda: _grid(CPU_BASE)},
    run=run,
    chapter="credit_assignment",
    uses_gpu=True,
)
