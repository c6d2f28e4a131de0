"""The claim type, the verdict vocabulary and the list of published claims the book checks.

A verdict is computed from rows by a stated rule (``evidence`` says which numbers decided it), never
typed in. The published claims themselves are data (``data/published/claims.csv``): a claim whose
rows do not exist yet is shown as ``pending`` from that file, never from a list in code.
"""

from __future__ import annotations

import functools
import math
import numbers
from dataclasses import dataclass

import pandas as pd

from potlib.provenance import REPO_ROOT

VERDICTS = ("reproduced", "trend reproduced", "differs", "not reproducible here", "pending")
PUBLISHED_DIR = REPO_ROOT / "data" / "published"


@dataclass(frozen=True)
class Claim:
    """One published claim beside our measurement and a verdict.

    ``id`` ties a measured verdict to its row in ``data/published/claims.csv`` ("" for claims that
    are checked in one chapter only and have no pending state).
    """

    chapter: str
    claim: str
    source: str
    published: str
    ours: str
    verdict: str
    evidence: str = ""
    id: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict {self.verdict!r} is not allowed; allowed: {', '.join(VERDICTS)}")


def load_published(name: str) -> pd.DataFrame:
    """A transcribed table from ``data/published/<name>.csv`` ('#' lines are comments)."""
    path = PUBLISHED_DIR / f"{name}.csv"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in PUBLISHED_DIR.glob("*.csv")))
        raise FileNotFoundError(f"no published table {name!r} ({path}); known: {known}")
    return pd.read_csv(path, comment="#")


@functools.lru_cache(maxsize=1)
def _claims_list() -> pd.DataFrame:
    """``data/published/claims.csv``, read once per process (every verdict looks its claim up here)."""
    return load_published("claims")


def noise(p1: float, p2: float, n1: int, n2: int) -> float:
    """Twice the standard error of p1 - p2 for two independent binomial accuracies (at least 1/n)."""
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    return max(2 * se, 1 / min(n1, n2))


def published_claim(claim_id: str, ours: str, verdict: str, evidence: str) -> Claim:
    """A verdict on the claim ``claim_id`` of ``data/published/claims.csv``."""
    known = _claims_list().set_index("id")
    if claim_id not in known.index:
        raise KeyError(f"claim id {claim_id!r} is not in data/published/claims.csv; known: {', '.join(known.index)}")
    r = known.loc[claim_id]
    if verdict == "pending":  # the numbers that would decide it are missing (NaN): say so, not "nan"
        ours = "waits until its grid is complete at this profile"
    return Claim(r["chapter"], r["claim"], r["source"], r["published"], ours, verdict, evidence, claim_id)


def pending(found: list[Claim]) -> list[Claim]:
    """The published claims that no verdict in ``found`` covers yet, as ``pending``."""
    done = {c.id for c in found if c.id}
    return [Claim(r.chapter, r.claim, r.source, r.published, "waits for its experiments' rows", "pending",
                  "the experiments behind this claim have not produced rows in this edition", r.id)
            for r in _claims_list().itertuples() if r.id not in done]


def table(claims: list[Claim]) -> pd.DataFrame:
    """Claims as a DataFrame, verdict first."""
    cols = ["verdict", "chapter", "claim", "published", "ours", "source", "evidence", "id"]
    return pd.DataFrame([c.__dict__ for c in claims], columns=cols)


def ok_rows(rows: pd.DataFrame, metrics: tuple[str, ...] = ()) -> pd.DataFrame:
    """The rows that finished ``ok``, with the ``metrics`` columns present even when there are none yet."""
    out = rows[rows["status"] == "ok"] if len(rows) else rows
    missing = {c: pd.Series(dtype=float) for c in metrics if c not in out.columns}
    return out.assign(**missing) if missing else out


def covered(rows: pd.DataFrame, grid: pd.DataFrame | None, **where) -> bool:
    """Whether ``rows`` hold a done row (ok or diverged) for every config of ``grid`` matching ``where``
    (column: value or tuple of values); ``grid`` None means the caller vouches that the rows, if any, are complete."""
    if grid is None:
        return len(rows) > 0

    def select(df: pd.DataFrame) -> pd.DataFrame:
        for k, v in where.items():
            df = df[df[k].isin(v if isinstance(v, tuple) else (v,))] if k in df.columns else df.iloc[:0]
        return df

    done = rows[rows["status"].isin(("ok", "diverged"))] if len(rows) else rows  # a diverged run is a result too
    return len(select(done)) >= len(select(grid))


def mean_of(df: pd.DataFrame, col: str, **where) -> float:
    """Mean of ``col`` over the rows matching ``where`` (NaN when none match)."""
    sel = df
    for k, v in where.items():
        sel = sel[sel[k] == v]
    return float(sel[col].mean()) if len(sel) else float("nan")


def finite(*values: float) -> bool:
    return all(isinstance(v, numbers.Real) and math.isfinite(v) for v in values)  # numpy scalars too


def pct(x: float) -> str:
    """An accuracy (a fraction in [0, 1]) as the pages print it, in percent: ``pct(0.107) == '10.7%'``."""
    return f"{100 * x:.1f}%"


def points(gap: float, sign: bool = True) -> str:
    """A difference of two accuracies (fractions) in percentage points: ``points(0.02) == '+2.0 points'``;
    ``sign=False`` for a size or a noise (``'2.0 points'``)."""
    return f"{100 * gap:+.1f} points" if sign else f"{100 * gap:.1f} points"
