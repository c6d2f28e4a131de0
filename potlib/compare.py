"""Do two result stores agree? Row by row, metric by metric: ``python -m potlib compare``.

A rerun of a grid (on another machine, with another executor, after a refactor) should reproduce the
committed rows. :func:`compare_rows` pairs the rows of one experiment and profile in two stores by
``cfg_id`` and reports, for every scalar metric, how far the pairs are apart::

    python -m potlib run credit_ladder --profile cpu --results-dir /tmp/rerun
    python -m potlib compare credit_ladder --profile cpu --against /tmp/rerun

``--ignore FIELD`` (repeatable) pairs rows by their config without those fields, for a rerun that changed
only them on purpose (e.g. ``compile``, which changes every ``cfg_id`` but should move no result beyond
rounding); two rows of one store that differ only there are an error.

Two values agree when ``|a - b| <= atol + rtol * |b|`` (``b`` from the reference store), both NaN, or
equal (bools, strings, infinities); a pair whose statuses differ (``ok`` vs ``diverged``) disagrees outright.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from potlib.results import ResultStore


@dataclass
class Comparison:
    """What :func:`compare_rows` found. ``metrics``: one line per scalar metric (rows compared, largest
    absolute and relative difference, pairs beyond the tolerance); ``status_differs``: cfg_ids whose
    statuses differ; ``only_ours`` / ``only_reference``: cfg_ids in one store only."""

    metrics: pd.DataFrame
    paired: int
    status_differs: list[str] = field(default_factory=list)
    only_ours: list[str] = field(default_factory=list)
    only_reference: list[str] = field(default_factory=list)

    @property
    def agree(self) -> bool:
        return self.paired > 0 and not self.status_differs and int(self.metrics["beyond"].sum()) == 0


def _scalar(v) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v)


def _pair_key(row: dict, ignore: tuple[str, ...]) -> str:
    if not ignore:
        return row["cfg_id"]
    return json.dumps({k: v for k, v in row["config"].items() if k not in ignore}, sort_keys=True)


def compare_rows(ours: Path | str, reference: Path | str, experiment: str, profile: str,
                 rtol: float = 1e-5, atol: float = 1e-8, ignore: tuple[str, ...] = ()) -> Comparison:
    """Pair the ``profile`` rows of ``experiment`` in ``ours`` and ``reference`` by cfg_id (by the config
    without the ``ignore`` fields, when given) and compare them; rows are then named by their cfg_id in ``ours``
    (``reference``'s for rows only there).

    Raises ValueError naming the parameter when a tolerance is negative, neither store holds a row, or two
    rows of one store differ only in ``ignore`` fields.
    """
    for name, tol in (("rtol", rtol), ("atol", atol)):
        if not (isinstance(tol, (int, float)) and tol >= 0):
            raise ValueError(f"{name} = {tol!r} is not allowed: a number >= 0")

    def pick(root) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for r in ResultStore(root).rows(experiment):
            if r.get("profile") != profile:
                continue
            k = _pair_key(r, ignore)
            if k in out:
                raise ValueError(f"ignore = {list(ignore)}: rows {out[k]['cfg_id']} and {r['cfg_id']} of {root} differ only "
                                 "in those fields, so they cannot be paired")
            out[k] = r
        return out

    a, b = pick(ours), pick(reference)
    if not a and not b:
        raise ValueError(f"experiment = {experiment!r}, profile = {profile!r}: no rows in {ours} nor in {reference}")
    common = sorted(a.keys() & b.keys())
    stats: dict[str, dict] = {}
    differs = []
    for cid in common:
        ra, rb = a[cid], b[cid]
        if ra.get("status") != rb.get("status"):
            differs.append(cid)
            continue
        for k in sorted(ra["metrics"].keys() & rb["metrics"].keys()):
            x, y = _scalar(ra["metrics"][k]), _scalar(rb["metrics"][k])
            if x is None or y is None:
                continue
            s = stats.setdefault(k, {"metric": k, "rows": 0, "max_abs_diff": 0.0, "max_rel_diff": 0.0, "beyond": 0})
            s["rows"] += 1
            if (math.isnan(x) and math.isnan(y)) or x == y:
                continue
            d = abs(x - y)
            if math.isnan(d):  # one NaN, or infinities of opposite sign
                s["beyond"] += 1
                s["max_abs_diff"] = s["max_rel_diff"] = math.inf
                continue
            s["max_abs_diff"] = max(s["max_abs_diff"], d)
            s["max_rel_diff"] = max(s["max_rel_diff"], d / abs(y) if y else math.inf)
            s["beyond"] += d > atol + rtol * abs(y)
    cols = ["metric", "rows", "max_abs_diff", "max_rel_diff", "beyond"]
    name = lambda keys, rows: sorted(rows[k]["cfg_id"] for k in keys)  # noqa: E731
    return Comparison(pd.DataFrame(list(stats.values()), columns=cols), len(common), name(differs, a),
                      name(a.keys() - b.keys(), a), name(b.keys() - a.keys(), b))
