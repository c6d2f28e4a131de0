"""Gradient-flow chapter: models, invariants and an end-to-end smoke run of each experiment."""

import math

import pytest
import torch

from potlib.models.cached_attention import CachedDecoder, attention_weight_grad_check
from potlib.models.stacks import Stack
from potlib.results import ResultStore
from potlib.sweep import run_sweep


@pytest.mark.parametrize("name", ["gradflow_depth", "gradflow_softmax", "gradflow_clipping", "frozen_context"])
def test_smoke_profile_writes_ok_rows(name, tmp_path):
    report = run_sweep(name, "smoke", root=tmp_path, progress=False)
    assert report.ran == report.expected and report.statuses == {"ok": report.expected}
    rows = ResultStore(tmp_path).rows(name)
    assert len(rows) == report.expected
    assert all(r["provenance"]["device"] for r in rows)


@pytest.mark.parametrize("norm", ["pre_norm", "post_norm", "no_residual"])
def test_stack_shapes_and_hidden_states(norm):
    model = Stack(vocab=11, seq_len=7, d_model=16, n_heads=2, n_layers=3, norm=norm)
    idx = torch.randint(0, 11, (2, 7))
    logits, hidden = model(idx, keep_hidden=True)
    assert logits.shape == (2, 7, 11) and len(hidden) == 4
    logits.sum().backward()
    assert all(h.grad is not None for h in hidden)


def test_output_scaling_init():
    model = Stack(11, 7, 64, 4, n_layers=8, norm="pre_norm", output_scaling=True)
    std = model.blocks[0].attn.o.weight.std().item()
    assert std == pytest.approx(0.02 / math.sqrt(16), rel=0.1)
    assert model.blocks[0].attn.q.weight.std().item() == pytest.approx(0.02, rel=0.1)


def _grads(model, ctx, dec, tgt, mode):
    model.zero_grad(set_to_none=True)
    model(ctx, dec, tgt, mode).backward()
    return {n: p.grad.clone() for n, p in model.named_parameters()}


def test_frozen_context_modes():
    torch.manual_seed(0)
    model = CachedDecoder(vocab=40, max_len=24, d_model=16, n_heads=2, n_layers=2).double()
    ctx = torch.randint(20, 40, (2, 16))  # context tokens never occur among decision tokens
    dec = torch.randint(0, 20, (2, 8))
    tgt = torch.randint(0, 20, (2, 8))
    with torch.no_grad():
        losses = {m: model(ctx, dec, tgt, m).item() for m in ("full", "frozen", "checkpoint")}
    assert losses["frozen"] == pytest.approx(losses["full"], rel=1e-12)  # causal: same forward
    full, frozen, ck = (_grads(model, ctx, dec, tgt, m) for m in ("full", "frozen", "checkpoint"))
    for n in full:
        torch.testing.assert_close(ck[n], full[n], rtol=1e-10, atol=1e-12)
    assert frozen["tok.weight"][20:].abs().sum() == 0  # context-only tokens learn nothing
    assert full["tok.weight"][20:].abs().sum() > 0
    assert all(frozen[n].abs().sum() > 0 for n in frozen)  # every tensor still gets gradient
    assert not torch.allclose(frozen["blocks.0.attn.k.weight"], full["blocks.0.attn.k.weight"])


def test_dalpha_dq_closed_form():
    assert attention_weight_grad_check(n_keys=12, d=8, n_frozen=9, generator=torch.Generator().manual_seed(0)) < 1e-12
