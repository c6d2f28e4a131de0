"""Rendering helpers for the notebooks: theme, parameter checks, provenance captions, verdict tables.

These draw nothing by themselves and import no notebook machinery; notebooks call them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from potlib.experiments import PROFILES
from potlib.provenance import REPO_ROOT

VERDICTS = ("reproduced", "trend reproduced", "differs", "not reproducible here", "pending")
PUBLISHED_DIR = REPO_ROOT / "data" / "published"


def set_theme() -> None:
    """One look for every figure: seaborn's whitegrid, colour-blind palette, compact fonts."""
    import matplotlib as mpl
    import seaborn as sns

    sns.set_theme(style="whitegrid", palette="colorblind", context="notebook", font_scale=0.9)
    mpl.rcParams.update({"figure.dpi": 110, "savefig.dpi": 110, "figure.figsize": (7.0, 3.6), "axes.titlesize": 10})


def check_params(profile: object, recompute: object) -> None:
    """Validate a notebook's papermill parameters with a message naming what is allowed."""
    if not isinstance(profile, str) or profile not in PROFILES:
        raise ValueError(f"parameter profile = {profile!r} is not allowed; allowed: {', '.join(map(repr, PROFILES))}")
    if not isinstance(recompute, bool):
        raise ValueError(f"parameter recompute = {recompute!r} is not allowed; allowed: True or False")


def provenance_line(*frames: pd.DataFrame) -> str:
    """'N rows · commit abc1234 · device ... · dataset ...' for a caption."""
    df = pd.concat(frames, ignore_index=True)
    if df.empty:
        return "0 rows"
    commits = sorted({str(c)[:7] + ("+dirty" if d else "") for c, d in zip(df["prov_git_commit"], df["prov_git_dirty"])})
    devices = sorted(set(df["prov_device"]))
    datasets = sorted(set(df["prov_dataset"].dropna()))
    status = df["status"].value_counts().to_dict()
    st = "" if set(status) == {"ok"} else " (" + ", ".join(f"{v} {k}" for k, v in status.items()) + ")"
    return (
        f"{len(df)} rows{st} · commit {', '.join(commits)} · device {'; '.join(devices)}"
        + (f" · data: {'; '.join(datasets)}" if datasets else "")
    )


def caption(text: str, *frames: pd.DataFrame) -> str:
    """A figure or table caption with its provenance appended."""
    return f"{text.rstrip('.')}. Provenance: {provenance_line(*frames)}."


def load_published(name: str) -> pd.DataFrame:
    """A transcribed table from ``data/published/<name>.csv``."""
    path = PUBLISHED_DIR / f"{name}.csv"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in PUBLISHED_DIR.glob("*.csv")))
        raise FileNotFoundError(f"no published table {name!r} ({path}); known: {known}")
    return pd.read_csv(path, comment="#")


@dataclass(frozen=True)
class Claim:
    """One published claim beside our measurement and a verdict."""

    chapter: str
    claim: str
    source: str
    published: str
    ours: str
    verdict: str
    evidence: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict {self.verdict!r} not in {VERDICTS}")


def claims_table(claims: list[Claim]) -> pd.DataFrame:
    return pd.DataFrame([c.__dict__ for c in claims])[["chapter", "claim", "published", "ours", "verdict", "source", "evidence"]]


def markdown_table(df: pd.DataFrame) -> str:
    """A DataFrame as a Markdown table whose cells cannot break it (pipes, emphasis markers escaped)."""
    esc = df.astype(str).apply(lambda col: col.map(lambda v: v.replace("|", "\\|").replace("_", "\\_").replace("*", "\\*")))
    esc.columns = [str(c).replace("_", "\\_") for c in esc.columns]
    return esc.to_markdown(index=False)


def save_figure(fig, name: str) -> Path | None:
    """Figures are shown inline by the notebook; nothing is written unless POTLIB_FIGURES is set."""
    import os

    folder = os.environ.get("POTLIB_FIGURES")
    if not folder:
        return None
    path = Path(folder) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    return path
