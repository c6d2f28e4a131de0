"""Training states kept between runs, so that a run can start from another run's earlier state.

Several grids of a chapter train the same model on the same data for different numbers of steps
(the HRM chapter: ``hrm_layers_computed``'s HRM at M = 2 is ``hrm_act``'s fixed-M run cut at 1,000 of its
2,000 steps, and ``hrm_original_choices``' AdamW/softmax run is that same run again). A
:class:`TrainingStore` keeps the complete state of a training run (weights, optimiser, schedule,
data order, random-number generators, whatever the loop carries) under a key that names everything
the state depends on, once per number of steps done; a later run with the same key and at least as
many steps resumes from the latest state at or below its own step count instead of from step 0.
Resuming is exact: the loop that uses the store must give, bit for bit, what an uninterrupted run
gives (``tests/test_hrm_train_cache.py``), so a reused state changes the time a sweep takes, never a
row.

Layout: ``<cache>/trained/<key hash>/key.json`` (the key, readable) and ``<steps>.pt`` (the state
after that many steps), under :func:`potlib.results.cache_dir` (``POTLIB_CACHE``). Files are written
atomically; a file that cannot be read is reported and ignored (the run trains from an earlier state
or from scratch). ``POTLIB_TRAIN_CACHE=0`` turns the store off (the tests do, except their own).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from pathlib import Path

import torch

from potlib.results import atomic_write_bytes, cache_dir


def enabled() -> bool:
    """Whether runs may read and write training states (``POTLIB_TRAIN_CACHE`` is not ``0``)."""
    return os.environ.get("POTLIB_TRAIN_CACHE", "1").strip().lower() not in ("0", "false", "no", "off")


def cpu_model() -> str:
    """The processor's model name (``/proc/cpuinfo``), or '' where it cannot be read: float results of a CPU
    run may differ between processors (their vector units pick other kernels)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


class TrainingStore:
    """Training states of one key (a JSON-serialisable dict of everything the state depends on)."""

    def __init__(self, key: dict, root: Path | None = None):
        self.key = key
        text = json.dumps(key, sort_keys=True, default=str)
        self.dir = (root or cache_dir() / "trained") / hashlib.sha256(text.encode()).hexdigest()[:16]
        self._key_text = text

    def steps_saved(self) -> list[int]:
        """Step counts with a saved state, ascending."""
        if not self.dir.is_dir():
            return []
        return sorted(int(p.stem) for p in self.dir.glob("*.pt") if p.stem.isdigit())

    def latest(self, max_steps: int) -> tuple[int, dict] | None:
        """(steps, state) of the latest readable state with steps <= ``max_steps``, or None."""
        for steps in reversed([s for s in self.steps_saved() if s <= max_steps]):
            path = self.dir / f"{steps}.pt"
            try:
                return steps, torch.load(path, map_location="cpu", weights_only=False)
            except Exception as e:  # a damaged file costs time, never a result
                warnings.warn(f"training state {path} cannot be read ({type(e).__name__}: {e}); ignored", stacklevel=2)
        return None

    def save(self, steps: int, state: dict) -> Path:
        """Write the state after ``steps`` steps (atomically) and the key beside it."""
        buf = io.BytesIO()
        torch.save(state, buf)
        path = self.dir / f"{steps}.pt"
        atomic_write_bytes(path, buf.getvalue())
        if not (self.dir / "key.json").exists():
            atomic_write_bytes(self.dir / "key.json", self._key_text.encode())
        return path
