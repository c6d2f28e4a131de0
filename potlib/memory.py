"""Measured peak memory, on CUDA and on CPU.

On CUDA we read the caching allocator (``torch.cuda.max_memory_allocated``) after resetting the
peak, which is what the SPEC asks for. On CPU there is no allocator statistic, so we use PyTorch's
tensor-level tracker (``torch.distributed._tools.mem_tracker.MemTracker``), which follows every
tensor storage created while it is active. Both report bytes above what was live before the call;
the ``kind`` string names the method so rows from the two never get mixed up.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch


@dataclass
class PeakMemory:
    """Result of :func:`track_peak`: bytes of the peak above the baseline, and the method used."""

    bytes: int = 0
    kind: str = ""
    by_category: dict[str, int] = field(default_factory=dict)

    @property
    def mib(self) -> float:
        return self.bytes / 2**20


@contextlib.contextmanager
def track_peak(device: torch.device | str, modules: tuple[torch.nn.Module, ...] = ()) -> Iterator[PeakMemory]:
    """Measure the peak memory of the enclosed block on ``device``.

    ``modules`` (CPU only) lets the tracker label parameters and gradients; activations are
    tracked either way.
    """
    device = torch.device(device)
    result = PeakMemory()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        yield result
        torch.cuda.synchronize(device)
        result.bytes = int(torch.cuda.max_memory_allocated(device) - base)
        result.kind = "cuda_max_memory_allocated"
        return
    from torch.distributed._tools.mem_tracker import MemTracker

    tracker = MemTracker()
    for m in modules:
        tracker.track_external(m)
    with tracker:
        yield result
    snap = tracker.get_tracker_snapshot("peak")
    per_dev = next(iter(snap.values()), {}) if snap else {}
    total = 0
    for key, value in per_dev.items():
        name = str(key).split(".")[-1]
        if name == "Total":
            total = int(value)
        else:
            result.by_category[name.lower()] = int(value)
    # Parameters existed before the block; count only what the block added.
    result.bytes = total - result.by_category.get("param", 0) - result.by_category.get("buffer", 0)
    result.kind = "cpu_memtracker"


def peak_of(fn: Callable[[], object], device: torch.device | str, modules=()) -> PeakMemory:
    """Run ``fn()`` once and return its :class:`PeakMemory`."""
    with track_peak(device, modules) as peak:
        fn()
    return peak
