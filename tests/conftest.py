import os
import sys
from pathlib import Path

import pytest
import torch

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))  # toy_experiment importable in-process


@pytest.fixture
def toy_env(monkeypatch, tmp_path):
    """Register the toy experiment for this process and for child processes."""
    monkeypatch.setenv("POTLIB_EXTRA_EXPERIMENTS", "toy=toy_experiment")
    monkeypatch.setenv("PYTHONPATH", str(TESTS) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.setenv("POTLIB_CACHE", str(tmp_path / "cache"))
    return tmp_path


@pytest.fixture(autouse=True)
def _isolated_cache(monkeypatch, tmp_path_factory):
    """Smoke rows of every test go to a throwaway cache, never to committed data."""
    monkeypatch.setenv("POTLIB_CACHE", str(tmp_path_factory.getbasetemp() / "potlib-cache"))
    # Decoded datasets (keyed by their sha256) are worth keeping between sessions: CIFAR takes ~15 s.
    if not os.environ.get("POTLIB_DATA_CACHE"):
        monkeypatch.setenv("POTLIB_DATA_CACHE", str(Path.home() / ".cache" / "potlib" / "data"))


@pytest.fixture(autouse=True)
def _one_thread():
    """The test models are tiny: one intra-op thread is faster than two, and far faster on a busy CPU."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def iso(tmp_path, monkeypatch):
    """An empty data root and cache, downloads off."""
    monkeypatch.setenv("POTLIB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("POTLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("POTLIB_DATA_CACHE", raising=False)
    monkeypatch.delenv("POTLIB_ALLOW_DOWNLOAD", raising=False)
    (tmp_path / "data").mkdir()
    return tmp_path
