"""The one training loop every pretraining and unlearning method shares, plus its small helpers."""

from __future__ import annotations

import logging
import time
from typing import Callable, Iterable, Iterator

import numpy as np
import torch
from torch import Tensor, nn

logger = logging.getLogger(__name__)

EpochCallback = Callable[[int, float], None]


class NonFiniteLossError(ValueError):
    """The training loss became NaN or infinite: deterministic for the same params and data, so a retry cannot
    help (the stage exits 2 and the flow does not retry it). The message names the method, the epoch and the step."""


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else CPU; asking for ``cuda`` without one is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: 'cuda' requested but no CUDA device is available")
    return torch.device(name)


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch's global RNG (augmentations, init) and return a CPU generator for batch order."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    return torch.Generator().manual_seed(seed)


def to_tensor(images: np.ndarray, device: torch.device | str = "cpu") -> Tensor:
    """uint8 (N, H, W, C) -> float (N, C, H, W) in [0, 1] on ``device``."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div(255.0).to(device)


def minibatches(n: int, batch_size: int, generator: torch.Generator, shuffle: bool = True) -> Iterator[Tensor]:
    """Index batches over ``range(n)``; the last partial batch is dropped when a full one exists
    (BatchNorm cannot train on a batch of one). Yields (b,) int64 tensors."""
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    if n <= batch_size:
        yield order
        return
    for start in range(0, n - batch_size + 1, batch_size):
        yield order[start:start + batch_size]


def cycle_batches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[Tensor]:
    """Endless reshuffled index batches over ``range(n)`` (for forget/reference batches alongside)."""
    while True:
        yield from minibatches(n, min(batch_size, n), generator)


def make_optimizer(params: Iterable[nn.Parameter], name: str, lr: float,
                   weight_decay: float = 0.0) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; expected adam or sgd")


def trainable(model: nn.Module) -> list[nn.Parameter]:
    """Parameters that receive gradients (momentum key/target encoders are excluded)."""
    return [p for p in model.parameters() if p.requires_grad]


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Optimizer steps per epoch of :func:`minibatches` (the last partial batch is dropped)."""
    return max(1, n // batch_size) if n > batch_size else 1


def prepare_schedule(model: nn.Module, epochs: int, n: int, batch_size: int) -> None:
    """Tell a learner with a step schedule (BYOL's EMA) how many steps this run has; restart its counter."""
    if hasattr(model, "set_total_steps"):
        model.set_total_steps(epochs * steps_per_epoch(n, batch_size), restart=True)


def fit(model: nn.Module, batch_loss: Callable[[Tensor], Tensor], n: int, *, epochs: int, batch_size: int,
        optimizer: torch.optim.Optimizer, generator: torch.Generator, desc: str = "train",
        on_epoch_end: EpochCallback | None = None, start_epoch: int = 1,
        autocast_device: str | None = None, max_grad_norm: float | None = None) -> list[float]:
    """Run epochs ``start_epoch..epochs`` over ``range(n)`` in shuffled batches, minimising ``batch_loss(indices)``.

    ``model.after_step()`` runs after every optimizer step when the model has one (momentum encoders).
    ``autocast_device="cuda"`` runs the loss in bfloat16 autocast (mixed precision; no loss scaling needed).
    ``max_grad_norm`` clips the global gradient norm before each step (None: no clipping).
    Logs one line per epoch (at most ~10 lines per call) and returns the mean loss per epoch run.
    A NaN or infinite loss raises :class:`NonFiniteLossError` naming ``desc``, the epoch and the step.
    """
    history: list[float] = []
    every = max(1, epochs // 10)
    start = time.perf_counter()
    steps = steps_per_epoch(n, batch_size)
    for epoch in range(start_epoch, epochs + 1):
        model.train()
        losses = []
        for step, idx in enumerate(minibatches(n, batch_size, generator), start=1):
            with torch.autocast(autocast_device or "cpu", dtype=torch.bfloat16, enabled=autocast_device is not None):
                loss = batch_loss(idx)
            if not torch.isfinite(loss):
                raise NonFiniteLossError(f"{desc}: loss became {loss.item()} at epoch {epoch}/{epochs}, step "
                                         f"{step}/{steps}; lower the lr (or clip the gradients)")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
            optimizer.step()
            if hasattr(model, "after_step"):
                model.after_step()
            losses.append(loss.item())
        history.append(float(np.mean(losses)))
        if on_epoch_end is not None:
            on_epoch_end(epoch, history[-1])
        if epoch % every == 0 or epoch == epochs:
            logger.info("%s epoch %d/%d loss %.4f (%.1fs)", desc, epoch, epochs, history[-1],
                        time.perf_counter() - start)
    return history
