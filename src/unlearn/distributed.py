"""Data-parallel pretraining with PyTorch DDP, launched by ``torchrun`` (one process per GPU, or per CPU slot).

    torchrun --standalone --nproc_per_node 2 -m unlearn.distributed --params params.yaml \\
        --data data/prepared --out models/original.pt --metrics reports/pretrain.json

is the ``pretrain`` stage (``python -m unlearn.stages.pretrain``, same arguments) on N processes; on several
machines, ``--nnodes M --node_rank i --rdzv_endpoint HOST:PORT`` instead of ``--standalone``. Rank 0 runs the
stage itself (MLflow run, probe metrics, the checkpoint and metrics files, written once); the other ranks only
train. Without torchrun (``WORLD_SIZE`` unset or 1) nothing here changes anything: the single-process path.

What makes N processes train the model one process would (same global batch, same seed):

- every rank draws the same shuffled global batch (the batch-order generator is seeded alike) and takes its
  contiguous 1/N of it (:func:`shard`), the equivalent of ``DistributedSampler`` over ``fit``'s index batches;
  the global batch must divide by N;
- DDP averages the gradients of the ranks' mean losses: the gradient of the global batch's mean loss; the loss
  ``fit`` logs (and checks for NaN) is the mean over ranks, so every rank logs, and stops, alike;
- BatchNorm normalises with the global batch's statistics: ``torch.nn.SyncBatchNorm`` on CUDA, and on the CPU
  (where SyncBatchNorm refuses to run) :class:`GlobalBatchNorm`, the same computation through differentiable
  all-reduces over gloo. MoCo's key encoder keeps per-process BatchNorm on purpose: that is MoCo's shuffle-BN
  (a key is normalised with other samples' statistics than its query; within a process, the learner's own
  sub-batch split does the shuffling);
- SimCLR's NT-Xent sees the whole global batch as negatives (projections all-gathered with autograd);
- MoCo enqueues the all-gathered keys of the global batch, so every rank's queue holds the same keys in the same
  order; BYOL's target is an EMA of the online weights, which DDP keeps identical on every rank, so the targets
  stay identical too (checked by ``tests/test_distributed.py``);
- checkpoints (the resumable training state, the model) are written by rank 0 only (:func:`is_main`).

Augmentations draw from each rank's own RNG stream (rank r is reseeded with seed + r), so with augmentations the
N-process run is the same distribution of runs as one process, not the same bytes; without them it matches one
process to float rounding.
"""

from __future__ import annotations

import argparse
import logging
import os
import warnings
from dataclasses import dataclass
from typing import Callable

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

logger = logging.getLogger(__name__)
# torch.distributed.nn.functional's autograd collectives are deprecated in favour of a private module (one warning
# per call); they remain the public differentiable all_gather / all_reduce
warnings.filterwarnings("ignore", r"torch\.distributed\.nn\.functional\.all_(gather|reduce) is deprecated",
                        FutureWarning)

#: Submodules that keep per-process BatchNorm (MoCo's shuffle-BN key encoder); everything else is synchronised.
LOCAL_BATCHNORM = {"moco": ("key_backbone", "key_projection")}


@dataclass(frozen=True)
class DistContext:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str  # "gloo", "nccl", or "none" for a single process


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """True on rank 0 and in a single process: the one that writes files and logs to MLflow."""
    return rank() == 0


def init_from_env(device: str = "auto") -> DistContext:
    """Join the process group torchrun describes (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
    ``MASTER_PORT``): NCCL when the device is CUDA (one GPU per process: ``cuda:LOCAL_RANK``), gloo on the CPU.
    With ``WORLD_SIZE`` unset or 1 it starts nothing and returns a single-process context."""
    from unlearn.training import resolve_device

    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device)
    if world <= 1 and not dist.is_initialized():
        return DistContext(0, 1, 0, dev, "none")
    if dev.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ValueError(f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} CUDA device(s): start "
                             "at most one process per GPU (torchrun --nproc_per_node)")
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend)
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank, dev, dist.get_backend())


def shard(idx: Tensor, n_ranks: int | None = None, r: int | None = None) -> Tensor:
    """This rank's contiguous 1/N of a global index batch (the global batch must divide by N).

    >>> shard(torch.arange(8), 2, 1).tolist()
    [4, 5, 6, 7]
    """
    n_ranks = world_size() if n_ranks is None else n_ranks
    r = rank() if r is None else r
    if len(idx) % n_ranks:
        raise ValueError(f"a global batch of {len(idx)} does not divide over {n_ranks} processes: choose "
                         "pretrain.batch_size (and a training set size) divisible by the number of processes")
    return idx.chunk(n_ranks)[r] if n_ranks > 1 else idx


def gather(x: Tensor) -> Tensor:
    """All ranks' ``x`` concatenated along dim 0 in rank order, differentiable (the backward sums the gradients
    that every rank's use of the result sends to this rank's part)."""
    if not is_distributed():
        return x
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(x))


class GlobalBatchNorm(_BatchNorm):
    """BatchNorm with the statistics of the global batch across all processes, on any device (gloo included):
    two differentiable all-reduces (sum and count, then the squared deviations), i.e. what
    ``torch.nn.SyncBatchNorm`` computes on CUDA. In eval mode, or in a single process, it is plain BatchNorm."""

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and is_distributed()):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        c = x.shape[1]
        dims = [0, *range(2, x.dim())]
        shape = [1, c] + [1] * (x.dim() - 2)
        count = x.new_full((1,), x.numel() // c)
        total = all_reduce(torch.cat([x.sum(dims), count]))
        n = total[c]
        mean = total[:c] / n
        var = all_reduce((x - mean.view(shape)).pow(2).sum(dims)) / n  # biased: what BatchNorm normalises with
        if self.track_running_stats:
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
            with torch.no_grad():
                self.running_mean.mul_(1 - factor).add_(mean.detach(), alpha=factor)
                self.running_var.mul_(1 - factor).add_(var.detach() * n / (n - 1), alpha=factor)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def convert_batchnorm(module: nn.Module, skip: tuple[str, ...] = (), cls: type | None = None) -> nn.Module:
    """Replace every BatchNorm under ``module`` (except under the top-level children named in ``skip``) by
    ``cls`` (default: SyncBatchNorm on CUDA, :class:`GlobalBatchNorm` elsewhere), in place. The parameters and
    buffers are the same objects, so an optimizer built before, and the state_dict keys, are unchanged."""

    def convert(m: nn.Module, kind: type) -> nn.Module:
        if isinstance(m, _BatchNorm) and not isinstance(m, kind):
            new = kind(m.num_features, m.eps, m.momentum, m.affine, m.track_running_stats)
            if m.affine:
                new.weight, new.bias = m.weight, m.bias
            if m.track_running_stats:
                new.running_mean, new.running_var = m.running_mean, m.running_var
                new.num_batches_tracked = m.num_batches_tracked
            new.train(m.training)
            return new
        for name, child in m.named_children():
            setattr(m, name, convert(child, kind))
        return m

    for name, child in module.named_children():
        if name not in skip:
            device = next(child.parameters(), torch.empty(0)).device
            kind = cls or (nn.SyncBatchNorm if device.type == "cuda" else GlobalBatchNorm)
            setattr(module, name, convert(child, kind))
    return module


class _GatheredCriterion(nn.Module):
    """Calls a batch criterion on the all-gathered global batch (SimCLR's NT-Xent: negatives from every rank)."""

    def __init__(self, criterion: nn.Module) -> None:
        super().__init__()
        self.inner = criterion

    def forward(self, *tensors: Tensor) -> Tensor:
        return self.inner(*(gather(t) for t in tensors))


class _Objective(nn.Module):
    """What DDP wraps: its forward is the learner's training loss, so DDP's gradient hooks see the whole step."""

    def __init__(self, learner: nn.Module) -> None:
        super().__init__()
        self.learner = learner

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.learner.training_loss(x, y)


def prepare_learner(learner: nn.Module) -> nn.Module:
    """Make a learner's cross-sample parts global (in place): BatchNorm, SimCLR's negatives, MoCo's queue."""
    name = getattr(learner, "name", "")
    convert_batchnorm(learner, skip=LOCAL_BATCHNORM.get(name, ()))
    if name == "simclr" and not isinstance(learner.criterion, _GatheredCriterion):
        learner.criterion = _GatheredCriterion(learner.criterion)
    if name == "moco":
        local_enqueue = learner.queue.enqueue
        learner.queue.enqueue = lambda keys: local_enqueue(gather(keys.detach()))  # the global batch's keys
    return learner


def batch_loss(learner: nn.Module, images: Tensor, labels: Tensor) -> Callable[[Tensor], Tensor]:
    """``fit``'s ``batch_loss``: the learner's training loss on the global index batch ``idx``.

    In a single process, ``learner.training_loss(images[idx], labels[idx])``. Under torchrun: the learner is
    prepared (:func:`prepare_learner`) and wrapped in DDP; each call runs this rank's shard through DDP and
    returns a loss whose gradient is this rank's and whose value is the mean over ranks."""
    if not is_distributed():
        return lambda idx: learner.training_loss(images[idx], labels[idx])
    from torch.nn.parallel import DistributedDataParallel

    prepare_learner(learner)
    device_ids = [images.device.index] if images.device.type == "cuda" else None
    # buffers need no broadcast: BatchNorm statistics are global, MoCo's queue is filled with global keys and
    # its key encoder's buffers are copied from the query encoder after every step
    ddp = DistributedDataParallel(_Objective(learner), device_ids=device_ids, forward_sync_buffers=False)
    torch.manual_seed(torch.initial_seed() + rank())  # each rank its own augmentation stream; rank 0 unchanged
    n_ranks = world_size()

    def loss(idx: Tensor) -> Tensor:
        local = shard(idx, n_ranks)
        value = ddp(images[local], labels[local])
        mean = value.detach().clone()
        dist.all_reduce(mean)
        return value + (mean / n_ranks - value.detach())

    return loss


def _pretrain_worker(ns: argparse.Namespace, params) -> None:
    """What ranks other than 0 run of the pretrain stage: the same data, config and training call, nothing
    written (rank 0 runs the stage itself and writes everything once)."""
    from unlearn import determinism
    from unlearn.data.manifest import load_prepared
    from unlearn.pretraining import learner_config, train_from_scratch
    from unlearn.training import resolve_device, to_tensor

    determinism.configure(params.pretrain.seed)
    device = resolve_device(params.device)
    data = load_prepared(ns.data)
    train = data.indices("train")
    x, y = to_tensor(data.images[train], device), torch.from_numpy(data.labels[train]).to(device)
    config = learner_config(params.pretrain, data.images.shape[-1], len(data.classes))
    train_from_scratch(config, x, y, resume_path=ns.resume, checkpoint_every=params.pretrain.checkpoint_every,
                       amp=params.pretrain.amp)


def main() -> None:
    from unlearn.config import load_params
    from unlearn.stages import common
    from unlearn.stages import pretrain as stage

    args = common.parser(__doc__)
    args.add_argument("--data", default="data/prepared")
    args.add_argument("--out", default="models/original.pt")
    args.add_argument("--metrics", default="reports/pretrain.json")
    args.add_argument("--resume", default="models/.original.resume.pt", help="resumable training state")
    ns = args.parse_known_args()[0]
    ctx = init_from_env(load_params(ns.params).device)
    logger.info("rank %d of %d (%s, %s)", ctx.rank, ctx.world_size, ctx.backend, ctx.device)
    try:
        common.run(stage.main if ctx.rank == 0 else _pretrain_worker, args)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    main()
