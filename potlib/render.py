"""Rendering helpers for the notebooks: theme, parameter checks, provenance captions, verdict tables.

These draw nothing by themselves and import no notebook machinery; notebooks call them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from potlib.config import PROFILES


def set_theme() -> None:
    """One look for every figure: seaborn's whitegrid, colour-blind palette, compact fonts."""
    import matplotlib as mpl
    import seaborn as sns

    sns.set_theme(style="whitegrid", palette="colorblind", context="notebook", font_scale=0.9)
    mpl.rcParams.update({"figure.dpi": 110, "savefig.dpi": 110, "figure.figsize": (7.0, 3.6), "axes.titlesize": 10})


NOTEBOOK_PARAMETERS = ("profile", "recompute")


def _assigned_before(namespace: dict) -> set[str]:
    """Names assigned at top level by the cells run before the current one (IPython's ``In`` history):
    the parameters cell and, under papermill, its injected-parameters cell."""
    import ast

    names: set[str] = set()
    for src in list(namespace.get("In") or [])[:-1]:
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def check_params(profile: object, recompute: object, namespace: dict | None = None) -> None:
    """Validate a notebook's papermill parameters with a message naming what is allowed.

    ``namespace``: the notebook's ``globals()``, from the first cell after the parameters. A name that
    an earlier cell assigns and that is not a parameter can only come from papermill's injected cell,
    i.e. a misspelt ``-p`` name, which papermill itself only warns about: it is an error here.
    """
    if namespace is not None:
        unknown = sorted(_assigned_before(namespace) - set(NOTEBOOK_PARAMETERS))
        if unknown:
            raise ValueError(f"unknown notebook parameter(s) {', '.join(map(repr, unknown))}; "
                             f"allowed: {', '.join(NOTEBOOK_PARAMETERS)}")
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
    if len(datasets) > 3:  # e.g. one teacher per (α, depth): name the family, count the variants
        families = sorted({re.sub(r"\s*\(.*\)\s*$", "", d) for d in datasets})
        counts = {f: sum(d.startswith(f) for d in datasets) for f in families}
        datasets = [f + (f" ({n} variants)" if n > 1 else "") for f, n in counts.items()]
    status = df["status"].value_counts().to_dict()
    st = "" if set(status) == {"ok"} else " (" + ", ".join(f"{v} {k}" for k, v in status.items()) + ")"
    devices = sorted({re.sub(r"\b1 threads\b", "1 thread", d) for d in devices})  # rows written before the fix
    return (
        f"{len(df)} row{'s' if len(df) != 1 else ''}{st} · commit {', '.join(commits)} · device {'; '.join(devices)}"
        + (f" · data: {'; '.join(datasets)}" if datasets else "")
    )


def caption(text: str, *frames: pd.DataFrame) -> str:
    """A figure or table caption with its provenance appended."""
    return f"{text.rstrip('.')}. Provenance: {provenance_line(*frames)}."


_LINK = re.compile(r"(\[[^\]]*\]\([^)]*\))")


_MATH = re.compile(r"(\$[^$]+\$)")  # inline math: TeX reads "\_" as a literal underscore, so it stays unescaped


def _escape(text: str, links: bool) -> str:
    def esc(part: str) -> str:
        return "".join(p if _MATH.fullmatch(p) else p.replace("|", "\\|").replace("_", "\\_").replace("*", "\\*")
                       for p in _MATH.split(part))

    if not links:
        return esc(text)
    out = []
    for part in _LINK.split(text):  # keep [label](target) intact; escape its label and the rest
        if _LINK.fullmatch(part):
            label, target = part[1:].split("](", 1)
            out.append(f"[{esc(label)}]({target}")
        else:
            out.append(esc(part))
    return "".join(out)


def markdown_table(df: pd.DataFrame, links: bool = False) -> str:
    """A DataFrame as a Markdown table whose cells cannot break it (pipes, emphasis markers escaped).

    ``links=True`` keeps ``[label](target)`` cells as links.
    """
    # astype(str) keeps missing values missing under pandas' string dtype: they print as "–"
    esc = df.astype(str).apply(lambda col: col.map(lambda v: _escape(v if isinstance(v, str) else "–", links)))
    esc.columns = [_escape(str(c), False) for c in esc.columns]
    # the cells are already formatted: tabulate must not re-parse "1.0000" as 1; numeric columns still align right
    def numeric(col: pd.Series) -> bool:
        as_num = pd.to_numeric(col.astype(str).str.replace(",", ""), errors="coerce")
        return bool(as_num.notna().any() and (as_num.notna() | col.isna() | (col.astype(str) == "–")).all())

    align = ["right" if numeric(df.iloc[:, i]) else "left" for i in range(df.shape[1])]
    return esc.to_markdown(index=False, disable_numparse=True, colalign=align)


# one colour per credit rule on every page (seaborn "colorblind"; DFA orange and CB pink stay apart)
RULE_COLOURS = {"BP": "#0173b2", "DFA": "#de8f05", "SB": "#029e73", "CB": "#cc78bc", "VF": "#ca9161"}
RULE_MARKERS = {"BP": "o", "DFA": "s", "SB": "^", "CB": "D", "VF": "v"}


def cell(fmt: str = "{:.3f}"):
    """A formatter for one table column: numbers through ``fmt``, missing values (NaN: nothing measured, e.g. a
    diverged run) as "–", text (a published cell such as "≈1") unchanged. Use as ``df[col].map(render.cell())``."""
    def format_one(v) -> str:
        if isinstance(v, str):
            return v
        return "–" if v is None or v != v else fmt.format(v)
    return format_one


def published_points(ax, x, y, color, label: str | None = None, size: float = 45):
    """Published values drawn as hollow diamonds over our curves: visible without hiding our points, and the same
    marker on every page (the legend or caption names the source and its budget)."""
    return ax.scatter(x, y, marker="D", s=size, facecolor="none", edgecolor=color, linewidth=1.4, zorder=5, label=label)


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


def verdict_box(verdicts: pd.DataFrame, title: str = "Claims and verdicts", sections: dict[str, str] | None = None) -> str:
    """A chapter's opening box: one line per claim, verdict first, then what we measured (MyST admonition),
    followed by the rule each decided verdict follows (the claim's ``evidence``), so a reader can check it.

    ``sections`` maps a claim's ``id`` to the MyST target (``(name)=`` above a heading) of the section that backs
    it: the claim then links there (STYLE.md, "Book pages")."""
    shown = verdicts[["verdict", "claim", "ours"]].rename(columns={"ours": "what we measured"})
    if sections and "id" in verdicts.columns:
        shown["claim"] = [f"[{c}]({sections[i]})" if i in sections else c for c, i in zip(verdicts["claim"], verdicts["id"])]
    table = markdown_table(shown, links=bool(sections))
    counts = verdicts["verdict"].value_counts()
    summary = ", ".join(f"{n} {v}" for v, n in counts.items())
    rules = ""
    if "evidence" in verdicts.columns:
        decided = verdicts[(verdicts["verdict"] != "pending") & (verdicts["evidence"].fillna("") != "")]
        if len(decided):
            items = "\n".join(f"- *{_escape(str(c), False)}*: {_escape(str(e).removeprefix('rule: '), False)}"
                              for c, e in zip(decided["claim"], decided["evidence"]))
            rules = f"\n\n**How each verdict was reached**\n\n{items}"
    return f":::{{admonition}} {title} ({summary})\n:class: tip\n\n{table}{rules}\n\n:::\n"


def summary_box(text: str, title: str = "What this page finds") -> str:
    """The opening box of a page that tests no published claim (a diagnosis, an experiment beyond the papers): its
    findings, generated from the rows, in the same place and style as a chapter's verdict box."""
    return f":::{{admonition}} {title}\n:class: tip\n\n{text}\n\n:::\n"


def _fmt(v) -> str:
    if isinstance(v, (bool, str)) or v is None:
        return str(v)
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if f != f or f in (float("inf"), float("-inf")):
        return "–"  # not measured, or a ratio whose denominator is 0
    if f == int(f) and abs(f) < 1e6:
        return str(int(f))
    return f"{f:.2e}" if (abs(f) < 1e-3 or abs(f) >= 1e5) else f"{f:.3g}"


def tidy(df: pd.DataFrame) -> pd.DataFrame:
    """A table ready for the page: index levels as columns, numbers with three significant digits."""
    out = df.reset_index() if any(n is not None for n in df.index.names) else df.copy()
    # snake_case headers become words, so narrow columns can wrap between them
    out.columns = [(" ".join(map(str, c)) if isinstance(c, tuple) else str(c)).replace("_", " ") for c in out.columns]
    for c in out.columns:
        if out[c].dtype.kind in "fiub":
            out[c] = out[c].map(_fmt)
    return out
