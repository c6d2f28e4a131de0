"""Move stored code fingerprints to the executor-aware scheme, only where the code is provably unchanged.

Before this scheme, a row's ``code_fingerprint`` also hashed the grouped-training modules (each experiment's
``run_group``: ``potlib.experiments.credit_groups`` and ``potlib.credit.replicas``) for runs trained one at a
time, which never execute them; any work on replica training therefore marked every credit row stale. Now a row
trained alone is hashed without them (:func:`potlib.sweep.fingerprint`).

A row trained alone whose stored value equals the old hash of today's code was made by today's code: its value is
replaced by the new hash of the same code, and the old one kept as ``code_fingerprint_before``. Rows whose code has
changed since stay as they were (stale), and rows made by ``run_group`` keep the full hash. Run it before editing
the grouped-training modules, on every result root that holds rows from before the change (e.g. rows a GPU batch
brings back from an older commit); running it twice changes nothing.

    python scripts/migrate_fingerprints.py [--dry-run] [RESULTS_ROOT ...]   # default: data/results
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from potlib import experiments, runtime, sweep
from potlib.results import ResultStore, atomic_write_bytes


def migrate(root: Path, dry_run: bool = False) -> dict[str, int]:
    """Rewrite the fingerprints under ``root``; returns how many rows had each outcome."""
    counts = {"migrated": 0, "already current": 0, "stale (left as is)": 0, "grouped (left as is)": 0,
              "without fingerprint (left as is)": 0}
    store = ResultStore(root)
    for name in experiments.names():
        exp = experiments.get(name)
        old = runtime.code_fingerprint(exp.run.__module__)  # the scheme before: every module, grouped or not
        new = sweep.fingerprint(exp, grouped=False)
        for path in store.row_files(name):
            row = json.loads(path.read_text(encoding="utf-8"))  # raw JSON: everything else is written back verbatim
            prov = row["provenance"]
            stored = prov.get("code_fingerprint")
            if stored is None:  # rows from before fingerprints: nothing to compare
                counts["without fingerprint (left as is)"] += 1
            elif "replica_group" in prov:
                counts["grouped (left as is)"] += 1
            elif stored == new:
                counts["already current"] += 1
            elif stored != old:
                counts["stale (left as is)"] += 1
            else:
                counts["migrated"] += 1
                if not dry_run:
                    prov["code_fingerprint_before"], prov["code_fingerprint"] = stored, new
                    text = json.dumps(row, indent=1, sort_keys=True)  # how ResultStore.write lays rows out
                    atomic_write_bytes(path, (text + "\n").encode())
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("roots", nargs="*", type=Path, default=[Path("data/results")])
    ap.add_argument("--dry-run", action="store_true", help="count what would change, write nothing")
    args = ap.parse_args()
    for root in args.roots:
        if not root.is_dir():
            raise SystemExit(f"RESULTS_ROOT = '{root}' is not a folder of rows")
        counts = migrate(root, args.dry_run)
        print(f"{root}: " + ", ".join(f"{n} {k}" for k, n in counts.items()) + (" (dry run)" if args.dry_run else ""))


if __name__ == "__main__":
    main()
