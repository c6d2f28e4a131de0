"""Credit assignment without backprop (SPEC 3.3): rules, metrics, the ladder teacher, one training loop.

- ``rules``: BP, DFA, state bridge, credit bridge behind one interface (credit ``a_l`` per state).
- ``metrics``: Γ (cosine to the true gradient) and ρ (finite-difference usefulness).
- ``teacher``: the synthetic nonlinearity ladder [reconstructed].
- ``train``: the shared config fields and training loop of ``credit_ladder``, ``credit_cifar`` and
  ``credit_ablations``.
"""

from potlib.credit.metrics import credit_metrics, gamma_per_layer, rho_per_layer
from potlib.credit.rules import METHODS, S_TYPES, CreditRule, make_rule, normalise_credit
from potlib.credit.teacher import LadderTeacher, make_ladder, phi

__all__ = [
    "METHODS", "S_TYPES", "CreditRule", "make_rule", "normalise_credit",
    "credit_metrics", "gamma_per_layer", "rho_per_layer",
    "LadderTeacher", "make_ladder", "phi",
]
