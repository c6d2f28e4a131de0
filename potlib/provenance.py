"""Provenance recorded with every result row (SPEC section 1.3).

Git state is read once per process and cached. ``POTLIB_GIT_COMMIT`` overrides it for copies of the
tree without ``.git`` (e.g. a GPU machine that receives the working tree only); the dirty flag then
comes from ``POTLIB_GIT_DIRTY`` ("1"/"0") or is unknown.
"""

from __future__ import annotations

import datetime as _dt
import functools
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path

import torch

import potlib

REPO_ROOT = Path(__file__).resolve().parents[1]


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO_ROOT), *args],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


@functools.lru_cache(maxsize=1)
def git_state() -> tuple[str, bool | None]:
    """(commit, dirty). Dirty ignores ``data/`` so that writing rows does not mark a tree dirty."""
    if os.environ.get("POTLIB_GIT_COMMIT"):
        dirty_env = os.environ.get("POTLIB_GIT_DIRTY")
        dirty = None if dirty_env is None else dirty_env == "1"
        return os.environ["POTLIB_GIT_COMMIT"], dirty
    commit = _git("rev-parse", "HEAD")
    if not commit:
        return "unknown", None
    status = _git("status", "--porcelain", "--", ".", ":(exclude)data", ":(exclude)notebooks")
    return commit, bool(status) if status is not None else None


def device_name(device: str | torch.device) -> str:
    """Human-readable device, e.g. 'NVIDIA H100 80GB HBM3' or 'cpu (x86_64, 2 threads)'."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    n = torch.get_num_threads()
    return f"cpu ({platform.machine()}, {n} thread{'s' if n != 1 else ''})"


def collect(device: str | torch.device) -> dict:
    """Everything about the environment a row needs; run-specific fields are added by the sweep."""
    commit, dirty = git_state()
    return {
        "potlib_version": potlib.__version__,
        "git_commit": commit,
        "git_dirty": dirty,
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda,
        "python_version": platform.python_version(),
        "device": device_name(device),
        "device_type": torch.device(device).type,
        "hostname": socket.gethostname(),
        "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "argv": " ".join(sys.argv[:1] + sys.argv[1:]) if sys.argv else "",
    }
