"""Train the student's PyTorch twin (twin.py) on teacher vectors and source pairs, on a GPU or the CPU.

Loss per step, on one length-bucketed batch of texts and one batch of source pairs:

    distil   mean(1 - cos(student, teacher))                     on both batches
    + CONTRAST_W * InfoNCE(student -> teacher, in-batch, TAU)    keeps the teacher's geometry
    + PAIR_W * symmetric InfoNCE(student(anchor) <-> student(positive), in-batch, TAU)
                                                                 question -> answer, heading -> section,
                                                                 man NAME line -> DESCRIPTION, ...

The number of steps is either given or fitted to a time budget (measured after the first steps),
so that a run on a lent machine ends with a finished cosine schedule rather than a cut-off one.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

TAU = 0.05
CONTRAST_W = 0.1
PAIR_W = 0.2


@dataclass
class TrainConfig:
    emb: int = 128
    hidden: int = 384
    dim: int = 384
    vocab_size: int = 30522
    batch: int = 512
    pair_batch: int = 192
    lr: float = 2e-3
    warmup: int = 300
    steps: int = 0  # 0: fit to `seconds`
    seconds: float = 0.0
    seed: int = 20261129
    tau: float = TAU
    contrast_w: float = CONTRAST_W
    pair_w: float = PAIR_W
    history: list = field(default_factory=list)


class Ragged:
    """Token id sequences in one flat int32 array (cheap to slice into padded batches)."""

    def __init__(self, seqs: list[np.ndarray]):
        self.lens = np.array([len(s) for s in seqs], dtype=np.int32)
        self.offs = np.concatenate([[0], np.cumsum(self.lens)]).astype(np.int64)
        self.flat = np.concatenate(seqs).astype(np.int32) if seqs else np.zeros(0, np.int32)

    def __len__(self):
        return len(self.lens)

    def batch(self, idx: np.ndarray) -> np.ndarray:
        t = max(1, int(self.lens[idx].max()))
        out = np.zeros((len(idx), t), dtype=np.int64)
        for r, j in enumerate(idx):
            out[r, :self.lens[j]] = self.flat[self.offs[j]:self.offs[j + 1]]
        return out


def length_batches(lens: np.ndarray, items: np.ndarray, batch: int, rng) -> list[np.ndarray]:
    """Sort by length (random tie-break), cut into batches, shuffle the batches."""
    order = items[np.lexsort((rng.random(len(items)), lens[items]))]
    bs = [order[i:i + batch] for i in range(0, len(order), batch) if len(order[i:i + batch]) == batch]
    rng.shuffle(bs)
    return bs


def pair_batches(n_pairs: int, batch: int, rng, p: np.ndarray | None = None):
    """Batches of pair indices, forever: shuffled passes over all pairs, or, with ``p`` (one
    probability per pair, summing to 1), ``batch`` distinct pairs drawn by ``p`` each time (so
    that a scarce source, such as FAQ questions, is seen more often). None forever when there
    are fewer pairs than a batch."""
    if n_pairs < batch:
        while True:
            yield None
    while True:
        if p is not None:
            yield rng.choice(n_pairs, size=batch, replace=False, p=p)
            continue
        perm = rng.permutation(n_pairs)
        for i in range(0, len(perm) - batch + 1, batch):
            yield perm[i:i + batch]


def train(ids: Ragged, teacher: np.ndarray, pairs: np.ndarray, train_idx: np.ndarray, val_idx: np.ndarray,
          cfg: TrainConfig, *, device: str = "cpu", log=print, checkpoint=None, checkpoint_every_s: float = 90.0,
          init_state: dict[str, np.ndarray] | None = None, start_step: int = 0, pair_p: np.ndarray | None = None):
    """Returns the trained twin (on `device`). pairs: (P, 2) indices into ids/teacher; ``pair_p``:
    how likely each pair is drawn into a batch (``pair_batches``; None: every pair once a pass).

    ``init_state`` (``load_twin_state`` of an earlier run's checkpoint) and ``start_step`` (its
    ``checkpoint_step``) continue that run: its weights, the learning-rate schedule from that
    step (Adam's moments start afresh), so that a training too long for one session (on CPU)
    is split into runs that each finish in one."""
    import torch
    from torch.nn import functional as F

    from .twin import build_twin

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    model = build_twin(cfg.vocab_size, cfg.emb, cfg.hidden, cfg.dim).to(device)
    if init_state is not None:
        model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in init_state.items()})
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    tvec = torch.from_numpy(teacher.astype(np.float32)).to(device)
    tau = cfg.tau

    def nce(a, b):
        return F.cross_entropy(a @ b.T / tau, torch.arange(len(a), device=device))

    def step_loss(d_idx, p_idx):
        x = torch.from_numpy(ids.batch(d_idx)).to(device)
        s = model(x)
        t = tvec[torch.from_numpy(d_idx).to(device)]
        l_cos = (1 - (s * t).sum(-1)).mean()
        loss = l_cos + cfg.contrast_w * nce(s, t)
        l_pair = torch.zeros((), device=device)
        if p_idx is not None:
            a_i, p_i = pairs[p_idx, 0], pairs[p_idx, 1]
            sa = model(torch.from_numpy(ids.batch(a_i)).to(device))
            sp = model(torch.from_numpy(ids.batch(p_i)).to(device))
            ta = tvec[torch.from_numpy(a_i).to(device)]
            tp = tvec[torch.from_numpy(p_i).to(device)]
            l_pd = (2 - (sa * ta).sum(-1) - (sp * tp).sum(-1)).mean() / 2
            l_pair = (nce(sa, sp) + nce(sp, sa)) / 2
            loss = loss + l_pd + cfg.pair_w * l_pair
        return loss, l_cos, l_pair

    def batches_forever():
        while True:
            yield from length_batches(ids.lens, train_idx, cfg.batch, rng)

    def val_cos():
        model.eval()
        out = []
        with torch.no_grad():
            for b in length_batches(ids.lens, val_idx, 256, np.random.default_rng(0)) or [val_idx]:
                s = model(torch.from_numpy(ids.batch(b)).to(device))
                out.append((s * tvec[torch.from_numpy(b).to(device)]).sum(-1).cpu().numpy())
        model.train()
        return float(np.concatenate(out).mean()) if out else float("nan")

    db, pb = batches_forever(), pair_batches(len(pairs), cfg.pair_batch, rng, pair_p)
    total = cfg.steps or 10 ** 9
    t0 = time.time()
    last_ckpt = t0
    step = start_step
    t_mark = t0  # reset at step 20 of this run: the speed of its steps 20..60 fits the schedule to the time budget
    model.train()
    while step < total:
        if not cfg.steps and step - start_step == 60:
            # fit the schedule to the time budget, from the speed of steps 20..60
            per = (time.time() - t_mark) / 40
            total = max(step + 1, int((cfg.seconds - (time.time() - t0)) / per) + step)
            log(f"step time {per * 1000:.1f} ms -> {total - start_step} steps in {cfg.seconds:.0f} s")
        if step - start_step == 20:
            t_mark = time.time()
        lr = cfg.lr * (step + 1) / cfg.warmup if step < cfg.warmup else \
            cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - cfg.warmup) / max(1, total - cfg.warmup)))))
        for g in opt.param_groups:
            g["lr"] = lr
        loss, l_cos, l_pair = step_loss(next(db), next(pb))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 500 == 0 or step == total:
            rec = {"step": step, "s": round(time.time() - t0, 1), "loss": round(loss.item(), 4),
                   "cos": round(1 - l_cos.item(), 4), "pair_nce": round(l_pair.item(), 4), "lr": lr,
                   "val_cos": round(val_cos(), 4)}
            cfg.history.append(rec)
            log(json.dumps(rec))
        if checkpoint and time.time() - last_ckpt > checkpoint_every_s:
            checkpoint(model, step)
            last_ckpt = time.time()
        if cfg.steps and cfg.seconds and time.time() - t0 > cfg.seconds:
            # a fixed schedule split over runs: this one's time is up; the caller saves the
            # weights with this step, and the next run continues from it (init_state, start_step)
            log(f"time budget spent at step {step} of {total}")
            break
    cfg.steps = step
    return model


def save_twin(model, cfg: TrainConfig, path: Path, extra: dict | None = None) -> None:
    from .twin import state_to_numpy

    path = Path(path)
    state = state_to_numpy(model)
    # the embedding table in a file of its own: the lent machine returns files of at most 16 MiB each
    emb = path.with_name(path.stem + "-embedding.npy")
    np.save(emb.with_suffix(".tmp.npy"), state.pop("embedding.weight"))
    emb.with_suffix(".tmp.npy").replace(emb)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **state)
    tmp.replace(path)
    meta = {"config": {k: v for k, v in asdict(cfg).items() if k != "history"}, "history": cfg.history,
            **(extra or {})}
    path.with_suffix(".json").write_text(json.dumps(meta, indent=1))


def load_twin_state(path: Path) -> dict[str, np.ndarray]:
    """The arrays save_twin wrote (student.npz + student-embedding.npy)."""
    path = Path(path)
    state = dict(np.load(path))
    state["embedding.weight"] = np.load(path.with_name(path.stem + "-embedding.npy"))
    return state
