"""Claims checked by the book: published statement, our measurement, a verdict computed by a rule.

``core`` holds the claim type and the list of published claims (``data/published/claims.csv``); one
module per chapter turns that chapter's rows into verdicts. The scorecard shows all of them; each
chapter shows its own.
"""

from potlib.claims.core import VERDICTS, Claim, load_published, pending, published_claim, table
from potlib.claims.gradflow import frozen_context, gradient_flow
from potlib.claims.parser import parser, ud_leak
from potlib.claims.theory import gradient_modes_theory

__all__ = ["VERDICTS", "Claim", "load_published", "pending", "published_claim", "table", "frozen_context",
           "gradient_flow", "parser", "ud_leak", "gradient_modes_theory"]
