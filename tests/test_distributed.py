"""DDP equivalence: `train_from_scratch` on 2 CPU processes (torchrun, gloo) against one process with the same
global batch and seed, for the four families, without augmentations (with them, each rank draws its own views).

Tolerance: max |Δweight| <= 2e-3 after 8 SGD steps (weights are O(1)). Float32 reduction order differs (DDP
averages two half-batch gradients; BatchNorm and NT-Xent add partial sums) and these tiny nets amplify rounding:
measured 2e-7 (supervised), 2e-5 (SimCLR), 6e-4 (BYOL), while the same single process on 1 vs 2 threads already
differs by up to 5e-4 after the same steps. The mistakes this catches are 100x larger: per-process BatchNorm
gives 0.19-1.6, per-process SimCLR negatives 0.43. Per-epoch losses agree to 1e-4 relative.
MoCo is compared rank against rank only: its key encoder keeps per-process BatchNorm
(shuffle-BN), so 2 processes normalise keys over other sub-batches than one process does.

This file is also the torchrun worker:
`python -m torch.distributed.run --nproc_per_node 2 tests/test_distributed.py OUT`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

METHODS = ("supervised", "simclr", "byol", "moco")
N, BATCH, EPOCHS, QUEUE = 64, 16, 2, 32


def config(method: str) -> dict:
    return {"method": method, "backbone": {"name": "resnet_compact", "width": 4, "blocks": [1, 1, 1, 1]},
            "augment": "none", "in_channels": 1, "num_classes": 4, "temperature": 0.5, "projection_dim": 8,
            "queue_size": QUEUE, "momentum": 0.9,
            "training": {"epochs": EPOCHS, "batch_size": BATCH, "lr": 0.05, "weight_decay": 0.0,
                         "optimizer": "sgd", "seed": 0}}


def data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(123)
    return torch.rand(N, 1, 12, 12, generator=g), torch.randint(0, 4, (N,), generator=g)


def train_all() -> dict:
    from unlearn.pretraining import train_from_scratch

    x, y = data()
    out = {}
    for method in METHODS:
        learner, history = train_from_scratch(config(method), x, y)
        out[method] = {"state": {k: v.detach().clone() for k, v in learner.state_dict().items()},
                       "history": history, "bn": sorted({type(m).__name__ for m in learner.modules()
                                                         if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)})}
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           __file__, str(out)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ranks = [torch.load(out / f"rank{r}.pt", weights_only=False) for r in (0, 1)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = train_all()
    finally:
        torch.set_num_threads(threads)
    return ranks, single


def max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a if a[k].numel())


@pytest.mark.parametrize("method", METHODS)
def test_ranks_hold_identical_models(runs, method):
    """Weights, BatchNorm statistics, MoCo's queue and key encoder, BYOL's target: the same on both ranks."""
    (r0, r1), _ = runs
    assert max_diff(r0[method]["state"], r1[method]["state"]) == 0.0
    assert r0[method]["history"] == r1[method]["history"]


@pytest.mark.parametrize("method", ["supervised", "simclr", "byol"])
def test_two_processes_match_one_with_the_same_global_batch(runs, method):
    (r0, _), single = runs
    assert r0[method]["bn"] == ["GlobalBatchNorm"] and "GlobalBatchNorm" not in single[method]["bn"]
    diff = max_diff(r0[method]["state"], single[method]["state"])
    print(f"{method}: max |2 processes - 1 process| = {diff:.2e}")
    assert diff <= 2e-3, f"{method}: max |weight difference| {diff:.2e}"
    assert r0[method]["history"] == pytest.approx(single[method]["history"], rel=1e-4)
    moved = max_diff(single[method]["state"], train_untrained(method))
    assert moved > 0.1, f"training barely moved the weights ({moved:.2e}): the comparison says nothing"


def train_untrained(method: str) -> dict:
    from unlearn.learners import build_learner

    torch.manual_seed(0)
    return build_learner(config(method)).state_dict()


def test_moco_enqueues_the_global_batch_and_keeps_shuffle_bn_local(runs):
    (r0, _), single = runs
    steps = EPOCHS * N // BATCH
    assert int(r0["moco"]["state"]["queue.ptr"]) == steps * BATCH % QUEUE == int(single["moco"]["state"]["queue.ptr"])
    assert r0["moco"]["bn"] == ["BatchNorm1d", "BatchNorm2d", "GlobalBatchNorm"]


@pytest.mark.slow
def test_torchrun_pretrain_stage_writes_once_and_matches_the_single_process_stage(tmp_path):
    """`torchrun -m unlearn.distributed` (the pretrain stage on 2 gloo processes) on the tiny pipeline's data:
    one checkpoint, one metrics file and one MLflow run, and the model of the one-process stage."""
    import json

    from pipeline_project import make_project, merge
    from pipeline_project import run as _run
    from test_pipeline import TINY

    from unlearn.models.checkpoint import read_checkpoint

    proj = tmp_path / "project"
    env = make_project(proj, merge(TINY, {"pretrain": {"epochs": 6}}))
    _run(["dvc", "repro", "prepare"], proj, env)
    common = ["--params", "params.yaml", "--data", "data/prepared"]
    _run([sys.executable, "-m", "unlearn.stages.pretrain", *common, "--out", "one/original.pt",
          "--metrics", "one/pretrain.json", "--resume", "one/resume.pt"], proj, env)
    _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
          "-m", "unlearn.distributed", *common, "--out", "two/original.pt", "--metrics", "two/pretrain.json",
          "--resume", "two/resume.pt"], proj, dict(env, OMP_NUM_THREADS="1"))
    assert sorted(p.name for p in (proj / "two").iterdir()) == ["original.pt", "pretrain.json"]
    one, two = (json.loads((proj / d / "pretrain.json").read_text()) for d in ("one", "two"))
    assert two["final_loss"] == pytest.approx(one["final_loss"], rel=1e-4)
    assert abs(two["probe_test_accuracy"] - one["probe_test_accuracy"]) <= 1.0
    a, b = (read_checkpoint(proj / d / "original.pt")["state_dict"] for d in ("one", "two"))
    assert max_diff(a, b) <= 2e-3

    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{proj / 'mlflow.db'}")
    runs = mlflow.search_runs(search_all_experiments=True, filter_string="tags.`unlearn.stage` = 'pretrain'")
    assert len(runs) == 2, "the 2-process stage logged more (or less) than one MLflow run"


if __name__ == "__main__":  # the torchrun worker
    import torch.distributed as dist

    from unlearn.distributed import init_from_env

    torch.set_num_threads(1)
    ctx = init_from_env("cpu")
    assert (ctx.world_size, ctx.backend) == (2, "gloo"), ctx
    torch.save(train_all(), Path(sys.argv[1]) / f"rank{ctx.rank}.pt")
    dist.destroy_process_group()
