"""Train R credit-assignment runs at once: stacked parameters ``(R, out, in)`` and batched matmuls (``baddbmm``).

Equivalent to :func:`potlib.credit.train.train` alone, to float rounding (``tests/test_replicas.py``): replica r
is built right after ``set_seed(cfg.seed)`` as the runner builds it; a generator per replica draws ``train``'s data
order (seed) and metric samples (seed + 1); AdamW is elementwise, so one over stacked tensors is R of them (lr,
weight decay and schedule are in the group key; no clipping); the stacked optimizers are PyTorch's fused ones, one pass
over each stacked tensor where the foreach ones of a run alone make several, to float rounding the same update; the
objective sums the replicas' losses, so each
gets its own gradient; the credit RMS is per (replica, layer). BP and DFA mix in a group (a mask selects each
replica's credit); SB and CB train in groups of one method, their auxiliary net (and CB's EMA target) stacked
(:mod:`potlib.credit.stacked`) with one Adam; past the warmup the auxiliary loss reuses the forward passes that
computed the credit (``ReplicaTrainer._aux_forward``; bit for bit the same step, tested); CB's noise comes from one
generator per replica holding the RNG state its run alone would have, and the EMA target scores the K noisy copies
of a state with their shared inputs computed once (``StackedCondNet.forward_shared_context``). Measured side by side
on the 2-core machine (12 CB replicas at L = 4, one thread, seven interleaved rounds, 2026-12-01): the shared inputs
make a step about 1.05x faster, the fused optimizers about 1.04x more. VF has no replica path. Final Γ/ρ unstack
each replica into a ResMLP for ``credit_metrics``. ``cuda_graph=True`` (CUDA only) replays a captured step after
three eager ones.
Sweeps: :func:`replica_groups` splits a grid (``seed``, ``method``, ``alpha`` may differ in a group) and
:func:`run_group` writes one row per config (``provenance.replica_group = R``, wall = group wall / R);
``--executor replicas`` uses them. Timings: ``python -m potlib bench --workload ladder_L4 --replicas 16``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from potlib.credit.metrics import credit_metrics, gamma_per_layer
from potlib.credit.rules import DFA, ema_update, normalise_credit
from potlib.credit.stacked import ReplicaSplit, StackedCondNet, StackedResMLP, ce_per_sample, per_replica_data
from potlib.credit.train import CreditConfig, TrainResult, build

SUPPORTED_METHODS = ("BP", "DFA", "SB", "CB")
BRIDGES = ("SB", "CB")  # a group holds one bridge method only (their auxiliary nets differ)
# fields that may differ inside one replica group; every other CreditConfig field must agree
VARYING = ("seed", "method")


def group_key(cfg: CreditConfig, vary: tuple[str, ...] = VARYING) -> tuple:
    """Configs with equal keys can be trained as one replica group (shapes, optimiser, metrics)."""
    return tuple(sorted((k, repr(v)) for k, v in cfg.to_dict().items() if k not in vary))


def check_group(configs: list[CreditConfig], vary: tuple[str, ...] = VARYING) -> None:
    """Raise ValueError naming the field when ``configs`` cannot share one replica group.

    Only the training fields of :class:`CreditConfig` must agree (apart from ``vary``); fields of a
    subclass shape the data only (e.g. the ladder's ``alpha``), and the data shapes are checked apart.
    """
    if not configs:
        raise ValueError("configs = [] is not allowed: at least one config")
    for c in configs:
        if c.method not in SUPPORTED_METHODS:
            raise ValueError(f"method = {c.method!r} is not supported by replica training: one of {SUPPORTED_METHODS}")
    methods = sorted({c.method for c in configs})
    if set(methods) & set(BRIDGES) and len(methods) > 1:
        raise ValueError(f"replica group: method differs ({methods}); a bridge (SB, CB) trains in a group of its own "
                         "method only")
    ref = configs[0].to_dict()
    train_fields = {f.name for f in dataclasses.fields(CreditConfig)}  # the rest only shape the data
    for c in configs[1:]:
        for k, v in c.to_dict().items():
            if k in train_fields and k not in vary and ref.get(k) != v:
                raise ValueError(f"replica group: field {k!r} differs ({ref.get(k)!r} vs {v!r}); "
                                 f"only {vary} may differ inside a group")


@dataclass
class StepTimes:
    """What :meth:`ReplicaTrainer.run` spent, seconds (wall, synchronised on CUDA)."""

    train: float = 0.0
    epoch_end: float = 0.0
    final: float = 0.0


class ReplicaTrainer:
    """R configs of one group trained together; :meth:`run` returns one TrainResult per config."""

    # past its warmup, a bridge's auxiliary loss reuses the forward passes that computed its credit (False: runs
    # them again; the tests hold both bit for bit equal)
    reuse_aux_forward = True

    def __init__(self, configs: list[CreditConfig], data, device, n_classes: int | None = None,
                 dtype: torch.dtype | None = None, cuda_graph: bool = False):
        from potlib.runtime import set_seed

        check_group(configs)
        self.configs, self.R = list(configs), len(configs)
        self.device = device = torch.device(device)
        self.cfg = cfg = configs[0]
        sets = per_replica_data(data, self.R)
        self.train_split = ReplicaSplit([s[0] for s in sets], [s[1] for s in sets])
        self.test_split = ReplicaSplit([s[2] for s in sets], [s[3] for s in sets])
        d_in = sets[0][0].shape[1]
        self.n_classes = n_classes or max(int(max(int(s[1].max()), int(s[3].max()))) + 1 for s in sets)

        models, self.rules, self.noise_gens = [], [], []
        for c in configs:
            set_seed(c.seed)  # as run_config does before exp.run -> train -> build
            m, rule = build(c, d_in, self.n_classes, device)
            if dtype is not None:
                m, rule = m.to(dtype), rule.to(dtype)
            models.append(m)
            self.rules.append(rule)
            # the global RNG as this replica's run alone would find it from here on: CB's bridge noise
            g = torch.Generator(device=device)
            g.set_state(torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state())
            self.noise_gens.append(g)
        self.net = StackedResMLP(models)
        del models
        L, d, C = cfg.n_layers, cfg.d, self.n_classes
        ref = self.net.p("embed.weight")
        # the bridge (SB or CB) of this group, if any: its stacked net, (CB) EMA target and Adam
        self.bridge = cfg.method if cfg.method in BRIDGES else None
        self.aux = self.aux_target = self.aux_opt = None
        if self.bridge == "SB":
            self.aux = StackedCondNet([r.net for r in self.rules])
        elif self.bridge == "CB":
            self.aux = StackedCondNet([r.value for r in self.rules])
            self.aux_target = StackedCondNet([r.target for r in self.rules]).requires_grad_(False)
        if self.aux is not None:
            self.aux_opt = torch.optim.Adam(self.aux.parameters(), lr=cfg.aux_lr, fused=True)
        # DFA feedback matrices (a bridge's own, for its warmup), zeros for BP replicas: (R, L+1, d, C)
        self.B = torch.stack([r.B if isinstance(r, DFA) else r.warmup.B if self.bridge else ref.new_zeros(L + 1, d, C)
                              for r in self.rules])
        self.is_bp = torch.tensor([c.method == "BP" for c in configs], device=device)
        self.any_bp, self.any_dfa = bool(self.is_bp.any()), not bool(self.is_bp.all())

        self.cuda_graph = cuda_graph
        if cuda_graph and self.bridge:
            raise ValueError(f"cuda_graph = True is not allowed for method {self.bridge!r}: BP and DFA only")
        if cuda_graph and device.type != "cuda":
            raise ValueError(f"cuda_graph = True is not allowed on device {device}: CUDA only")
        lr = torch.tensor(cfg.lr, device=device) if cuda_graph else cfg.lr
        self.opt = torch.optim.AdamW(self.net.parameters(), lr=lr, weight_decay=cfg.weight_decay,
                                     capturable=cuda_graph, fused=True)
        n = self.train_split.n
        self.bs = min(cfg.batch_size, n)
        self.steps_per_epoch = n // self.bs
        total = self.steps_per_epoch * cfg.epochs
        self.sched = (torch.optim.lr_scheduler.LambdaLR(
            self.opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
            if cfg.schedule == "cosine" else None)
        self.gens = [torch.Generator(device=device).manual_seed(c.seed) for c in configs]
        self.metric_gens = [torch.Generator(device=device).manual_seed(c.seed + 1) for c in configs]
        self.m = min(cfg.metric_samples, self.test_split.n)
        self._graph = None
        self._steps_done = 0
        self.times = StepTimes()

    # -- one step ------------------------------------------------------------------------------
    def credit(self, hs: list[Tensor], x: Tensor, y: Tensor, logits: Tensor) -> Tensor:
        """Each replica's own rule's un-normalised credit, (R, L+1, B, d) (BP and DFA; a bridge's warmup)."""
        a = None
        if self.any_bp:
            a, _ = self.net.true_state_grads(x, y)
        if self.any_dfa:
            e_T = torch.softmax(logits, -1) - F.one_hot(y, self.n_classes).to(logits.dtype)  # (R, B, C)
            a_dfa = torch.einsum("rldc,rbc->rlbd", self.B, e_T)
            a = a_dfa if a is None else torch.where(self.is_bp.view(-1, 1, 1, 1), a, a_dfa)
        return a

    # -- the bridges, stacked (potlib.credit.rules.StateBridge / CreditBridge over R replicas) -------------
    def _terminal(self, hs: list[Tensor], y: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """As ``terminal_pass``: (per-sample CE with the head's graph (R, B), δ_L (R, B, d), e_T (R, B, C),
        logits (R, B, C) detached); ``h_L`` enters the head detached."""
        h_last = hs[-1].detach().requires_grad_(True)
        logits = self.net.logits(h_last)
        ce = ce_per_sample(logits, y)
        (delta_L,) = torch.autograd.grad(ce.sum(), h_last, retain_graph=True)
        e_T = torch.softmax(logits.detach(), -1) - F.one_hot(y, self.n_classes).to(logits.dtype)
        return ce, delta_L.detach(), e_T, logits.detach()

    def _inputs(self, hs: list[Tensor], s: Tensor, layers: range) -> tuple[Tensor, Tensor, Tensor | None]:
        """As ``_Bridge._inputs``: t (n*B,), s (R, n*B, s_dim), h_last (R, n*B, d) or None for ``layers``."""
        b, n = hs[0].shape[1], len(layers)
        t = torch.arange(layers.start, layers.stop, device=s.device).repeat_interleave(b)
        h_last = hs[-1].repeat(1, n, 1) if self.aux.has_proj else None
        return t, s.repeat(1, n, 1), h_last

    def _conditioning(self, e_T: Tensor, delta_L: Tensor) -> Tensor:
        """As ``rules.conditioning``, per replica: ``e_T``, or ``δ_L`` over its own batch RMS."""
        if self.cfg.s_type.startswith("eT"):
            return e_T
        return delta_L / (delta_L.pow(2).mean(dim=(1, 2), keepdim=True).sqrt() + 1e-12)

    def _aux_forward(self, hs: list[Tensor], s: Tensor, delta_L: Tensor, credit: bool = True
                     ) -> tuple[Tensor | None, dict]:
        """The auxiliary net's forward passes on detached states ``hs``, with their graphs, and (``credit``) the
        bridge's own credit (R, L+1, B, d) they give. SB: one pass over layers 0..L, ``a_l = J_Gᵀ δ_L`` (the
        gradient of ``<G(h_l), δ_L>``); CB: the bridge-consistency pass over layers 0..L-1, ``a_l = ∇_h V_φ``, and
        the terminal pass at L, whose input gradient is both the credit at L and the terminal gradient to match.
        One function serves the training step (the passes are then reused by :meth:`bridge_aux_loss`: the
        auxiliary net has not changed in between, its step comes after the forward net's), the per-epoch Γ
        (passes discarded) and the warmup's auxiliary loss (``credit=False``)."""
        R, b, L1 = hs[0].shape[0], hs[0].shape[1], len(hs)
        if self.bridge == "SB":
            t, s_rep, h_last = self._inputs(hs, s, range(L1))
            h = torch.cat(hs, 1).requires_grad_(credit)  # (R, L1*B, d)
            g = self.aux(h, t, s_rep, h_last)
            if not credit:
                return None, {"g": g}
            (a,) = torch.autograd.grad((g * delta_L.repeat(1, L1, 1)).sum(), h, retain_graph=True)
            return a.view(R, L1, b, -1), {"g": g}
        L, tgw = L1 - 1, self.rules[0].tgw
        t, s_rep, h_last = self._inputs(hs, s, range(L))
        h = torch.cat(hs[:-1], 1).requires_grad_(credit)  # (R, L*B, d)
        pred = self.aux(h, t, s_rep, h_last).squeeze(-1)  # (R, L*B)
        tL, sL, hlL = self._inputs(hs, s, range(L, L + 1))
        hL = hs[-1].clone().requires_grad_(True)
        vL = self.aux(hL, tL, sL, hlL).squeeze(-1)  # (R, B)
        passes = {"pred": pred, "vL": vL, "gL": None}
        if credit or tgw > 0:
            (passes["gL"],) = torch.autograd.grad(vL.sum(), hL, create_graph=tgw > 0, retain_graph=True)
        if not credit:
            return None, passes
        (a_lo,) = torch.autograd.grad(pred.sum(), h, retain_graph=True)
        return torch.cat([a_lo.view(R, L, b, -1), passes["gL"].detach().view(R, 1, b, -1)], 1), passes

    def bridge_credit(self, hs: list[Tensor], s: Tensor, delta_L: Tensor) -> Tensor:
        """The bridge's own credit (past its warmup) for states ``hs``: (R, L+1, B, d)."""
        with torch.enable_grad():
            a, _ = self._aux_forward([z.detach() for z in hs], s, delta_L)
        return a.detach()

    def bridge_aux_loss(self, hs: list[Tensor], s: Tensor, delta_L: Tensor, ce: Tensor,
                        fwd: dict | None = None) -> Tensor:
        """Each replica's auxiliary loss (R,), as ``StateBridge.aux_loss`` / ``CreditBridge.aux_loss``;
        ``fwd``: the forward passes of :meth:`_aux_forward` on the same states, reused (else run here)."""
        hs = [z.detach() for z in hs]
        L = len(hs) - 1
        if fwd is None:
            _, fwd = self._aux_forward(hs, s, delta_L, credit=False)
        if self.bridge == "SB":
            target = hs[-1].repeat(1, L + 1, 1)
            return (fwd["g"] - target).pow(2).mean(dim=(1, 2)) / (target.pow(2).mean(dim=(1, 2)) + 1e-6)
        rule = self.rules[0]
        # bridge consistency for l = 0..L-1 against the soft-min of the EMA target at l+1
        pred = fwd["pred"]  # (R, L*B)
        with torch.no_grad():
            t1, s1, hl1 = self._inputs(hs, s, range(1, L + 1))
            nxt = torch.cat(hs[1:], 1)  # (R, L*B, d)
            noise = nxt.new_empty(len(hs[0]), rule.k, *nxt.shape[1:])  # (R, K, L*B, d)
            for r, g in enumerate(self.noise_gens):  # each replica's own draw, as alone
                torch.randn(rule.k, *nxt.shape[1:], generator=g, out=noise[r])
            noisy = noise.mul_(rule.sigma).add_(nxt.unsqueeze(1)).flatten(1, 2)  # (R, K*L*B, d), k-major as alone
            v_bar = self.aux_target.forward_shared_context(noisy, t1, s1, hl1, rule.k).view(len(hs[0]), rule.k, -1)
            target = -rule.lam * (torch.logsumexp(-v_bar / rule.lam, 1) - math.log(rule.k))  # (R, L*B)
        loss = (pred - target).pow(2).mean(1)
        # terminal value and terminal gradient matching at h_L
        vL, gL = fwd["vL"], fwd["gL"]
        loss = loss + (vL - ce).pow(2).mean(1)
        if rule.tgw > 0:
            loss = loss + rule.tgw * (gL - delta_L).pow(2).sum(-1).mean(1)
        return loss

    def _bridge_step(self, idx: Tensor, progress: float) -> tuple[Tensor, Tensor]:
        """``train_step`` for a bridge group: forward-net update, then the bridge net's; (CE (R,), aux (R,))."""
        x, y = self.train_split.gather(idx)
        hs, fs = self.net.local_forward(x)
        ce, delta_L, e_T, logits = self._terminal(hs, y)
        s = self._conditioning(e_T, delta_L)
        fwd = None
        if progress < self.cfg.wr:  # DFA warmup: the forward net follows DFA while the bridge net learns
            a = torch.einsum("rldc,rbc->rlbd", self.B, e_T)
        else:
            a, fwd = self._aux_forward([z.detach() for z in hs], s, delta_L)
        a = normalise_credit(a, self.cfg.credit_norm).detach()
        b = x.shape[1]
        surrogate = (hs[0] * a[:, 0]).sum() / b
        for l, f in enumerate(fs, start=1):
            surrogate = surrogate + (f * a[:, l]).sum() / b
        self.opt.zero_grad(set_to_none=True)
        (ce.mean(1).sum() + surrogate).backward()
        self.opt.step()
        aux = self.bridge_aux_loss(hs, s, delta_L, ce.detach(), fwd if self.reuse_aux_forward else None)
        self.aux_opt.zero_grad(set_to_none=True)
        # replicas share no parameters: each gets its own loss's gradient; the reused forward's states
        # require a gradient (the credit's), which this step does not need
        aux.sum().backward(inputs=list(self.aux.parameters()))
        self.aux_opt.step()
        if self.aux_target is not None:  # CB's EMA target
            ema_update(self.aux_target, self.aux, self.rules[0].ema)
        return ce.detach().mean(1), aux.detach()

    def _step_body(self, idx: Tensor) -> Tensor:
        """Forward, credit and AdamW step on batch rows ``idx`` (R, B); returns CE per replica (R,)."""
        x, y = self.train_split.gather(idx)  # (R, B, d_in), (R, B)
        hs, fs = self.net.local_forward(x)
        h_last = hs[-1].detach()
        logits = self.net.logits(h_last)  # (R, B, C); h_L enters the head detached, as terminal_pass
        ce = ce_per_sample(logits, y)  # (R, B)
        a = normalise_credit(self.credit(hs, x, y, logits.detach()), self.cfg.credit_norm).detach()
        b = x.shape[1]
        surrogate = (hs[0] * a[:, 0]).sum() / b  # Σ_r of each replica's local_surrogate
        for l, f in enumerate(fs, start=1):
            surrogate = surrogate + (f * a[:, l]).sum() / b
        loss = ce.mean(1).sum() + surrogate
        if self._graph is None:  # a captured graph writes into the grads it allocated itself
            self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return ce.detach().mean(1)

    def step(self, idx: Tensor, progress: float = 0.0) -> Tensor:
        """One training step of every replica; returns CE per replica (R,). ``progress`` (fraction of training
        done) decides a bridge's DFA warmup; a bridge's auxiliary loss is kept in ``self.last_aux`` (R,)."""
        self.last_aux = None
        if self.bridge:
            out, self.last_aux = self._bridge_step(idx, progress)
        elif not self.cuda_graph:
            out = self._step_body(idx)
        else:
            out = self._graph_step(idx)
        if self.sched is not None:
            self.sched.step()
        self._steps_done += 1
        return out

    def _graph_step(self, idx: Tensor) -> Tensor:
        if self._steps_done < 3:  # eager warm-up on a side stream: AdamW state, cuBLAS workspaces
            s = torch.cuda.Stream()
            s.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(s):
                out = self._step_body(idx)
            torch.cuda.current_stream().wait_stream(s)
            return out
        if self._graph is None:
            self._static_idx = idx.clone()
            self.opt.zero_grad(set_to_none=True)
            self._graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self._graph):
                self._static_out = self._step_body(self._static_idx)
        self._static_idx.copy_(idx)
        self._graph.replay()
        return self._static_out.clone()

    # -- evaluation ----------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, chunk: int = 4096) -> tuple[Tensor, Tensor]:
        """(accuracy (R,), mean CE (R,)) on each replica's test set."""
        sp = self.test_split
        correct = torch.zeros(self.R, device=self.device)
        loss = torch.zeros(self.R, device=self.device, dtype=torch.float64)
        for i in range(0, sp.n, chunk):
            if sp.shared:
                x, y = sp.x[i : i + chunk], sp.y[i : i + chunk].expand(self.R, -1)
            else:
                x, y = sp.x[:, i : i + chunk], sp.y[:, i : i + chunk]
            h = self.net.embed(x)
            for l in range(self.net.n_layers):
                h = h + self.net.block(l, h)
            logits = self.net.logits(h)
            correct += (logits.argmax(-1) == y).sum(1)
            loss += ce_per_sample(logits, y).sum(1).double()
        return correct / sp.n, loss / sp.n

    def epoch_gamma_and_norms(self) -> tuple[Tensor, Tensor]:
        """Γ of each replica's own credit (R,) and mean ‖h_l‖ (R, L+1) on the metric batch."""
        x, y = self.test_split.head(self.m)
        g, logits = self.net.true_state_grads(x, y)  # (R, L+1, m, d)
        if self.bridge:  # the bridge's own credit (progress = 1), as train's per-epoch credit_metrics
            with torch.no_grad():
                hs = self.net.states(x)
            with torch.enable_grad():
                _, delta_L, e_T, _ = self._terminal(hs, y)
            a = self.bridge_credit(hs, self._conditioning(e_T, delta_L), delta_L)
        else:
            a = self.credit(None, x, y, logits)
        gam = torch.stack([gamma_per_layer(a[r], g[r]).mean() for r in range(self.R)])
        with torch.no_grad():
            norms = torch.stack([h.norm(dim=-1).mean(-1) for h in self.net.states(x)], 1)  # (R, L+1)
        return gam, norms

    def _unstack_bridges(self) -> None:
        """Copy each replica's trained bridge net (and CB's target) back into its own rule, for the final
        metrics (``credit_metrics`` on one replica, the same code as a run alone)."""
        if not self.bridge:
            return
        for r, rule in enumerate(self.rules):
            (rule.net if self.bridge == "SB" else rule.value).load_state_dict(self.aux.state_dict_of(r))
            if self.aux_target is not None:
                rule.target.load_state_dict(self.aux_target.state_dict_of(r))

    # -- the whole run -------------------------------------------------------------------------
    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def run(self) -> list[TrainResult]:
        import time

        cfg, R = self.cfg, self.R
        keys = ("train_loss", "test_acc", "test_loss", "gamma", "aux_loss")
        curves = [{k: [] for k in keys} for _ in range(R)]
        norms: list[list[list[float]]] = [[] for _ in range(R)]
        diverged = [False] * R
        for epoch in range(cfg.epochs):
            t0 = time.perf_counter()
            progress = epoch / cfg.epochs
            perm = torch.stack([
                torch.randperm(self.train_split.n, device=self.device, generator=g)[: self.steps_per_epoch * self.bs]
                for g in self.gens
            ]).view(R, self.steps_per_epoch, self.bs).transpose(0, 1)  # (S, R, B)
            ce_sum = torch.zeros(R, device=self.device)
            aux_sum = torch.zeros(R, device=self.device)
            for idx in perm:
                ce_sum += self.step(idx, progress)
                if self.last_aux is not None:
                    aux_sum += self.last_aux
            self._sync()
            t1 = time.perf_counter()
            train_loss = (ce_sum / self.steps_per_epoch).tolist()
            aux_mean = (aux_sum / self.steps_per_epoch).tolist()
            acc, test_loss = (v.tolist() for v in self.evaluate())
            gam, nrm = self.epoch_gamma_and_norms()
            gam, nrm = gam.tolist(), nrm.tolist()
            for r in range(R):
                if diverged[r]:
                    continue
                for k, v in zip(keys, (train_loss[r], acc[r], test_loss[r], gam[r], aux_mean[r])):
                    curves[r][k].append(v)
                norms[r].append(nrm[r])
                if not (math.isfinite(train_loss[r]) and math.isfinite(test_loss[r])):
                    diverged[r] = True
            self._sync()
            self.times.train += t1 - t0
            self.times.epoch_end += time.perf_counter() - t1
            if all(diverged):
                break

        t2 = time.perf_counter()
        self._unstack_bridges()
        results = []
        x_m, y_m = self.test_split.head(self.m)
        for r, c in enumerate(self.configs):
            artifacts = {f"epoch_{k}": np.asarray(v, dtype=np.float64) for k, v in curves[r].items()}
            artifacts["epoch_state_norm"] = np.asarray(norms[r], dtype=np.float64)  # (epochs, L+1)
            metrics = {
                "test_acc": curves[r]["test_acc"][-1],
                "test_loss": curves[r]["test_loss"][-1],
                "train_loss": curves[r]["train_loss"][-1],
                "epochs_run": len(curves[r]["train_loss"]),
                "state_norm_last": norms[r][-1][-1],
            }
            if diverged[r]:
                metrics.update(gamma=float("nan"), rho=float("nan"))
                results.append(TrainResult(metrics, artifacts, diverged=True))
                continue
            cm = credit_metrics(self.net.replica(r), self.rules[r], x_m[r], y_m[r], eps=c.metric_eps,
                                n_dirs=c.metric_dirs, generator=self.metric_gens[r])
            metrics.update(cm)
            artifacts["gamma_per_layer"] = np.asarray(cm["gamma_per_layer"])
            artifacts["rho_per_layer"] = np.asarray(cm["rho_per_layer"])
            results.append(TrainResult(metrics, artifacts))
        self._sync()
        self.times.final = time.perf_counter() - t2
        return results


def train_replicas(configs: list[CreditConfig], data, device, n_classes: int | None = None,
                   cuda_graph: bool = False) -> list[TrainResult]:
    """Train ``configs`` (one replica group, see :func:`check_group`) together; one result each.

    ``data`` is one ``(x_train, y_train, x_test, y_test)`` tuple shared by all configs, or a list
    with one tuple per config (equal shapes). Results match ``train(cfg, data, device)`` run after
    ``set_seed(cfg.seed)`` for each config, to float rounding.
    """
    return ReplicaTrainer(configs, data, device, n_classes, cuda_graph=cuda_graph).run()


def replica_groups(configs: list[CreditConfig], max_replicas: int = 64) -> tuple[list[list[CreditConfig]], list]:
    """Split ``configs`` into replica groups (equal :func:`group_key` with ``alpha`` free too, where a
    config has it; a bridge method per group) of at most ``max_replicas``; configs with an unsupported method
    (VF) are returned apart."""
    vary = VARYING + ("alpha",)
    groups: dict[tuple, list] = {}
    rest = []
    for c in configs:
        if c.method not in SUPPORTED_METHODS:
            rest.append(c)
            continue
        # BP and DFA may share a group; each bridge method trains in groups of its own
        key = group_key(c, vary) + ((c.method,) if c.method in BRIDGES else ("BP/DFA",))
        groups.setdefault(key, []).append(c)
    out = []
    for g in groups.values():
        out += [g[i : i + max_replicas] for i in range(0, len(g), max_replicas)]
    return out, rest
