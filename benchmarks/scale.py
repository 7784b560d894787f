"""DDP pretraining throughput: 1 process vs N processes (torchrun, gloo on CPU / NCCL on CUDA), the real code path
(`train_from_scratch` with `unlearn.distributed`), synthetic CIFAR-sized images, the same global batch.

    python benchmarks/scale.py                      # CPU: 1 proc x 1 thread, 1 proc x 2 threads, 2 procs x 1 thread
    python benchmarks/scale.py --device cuda --procs 1 2 4 8  # one process per GPU

Each configuration trains a few epochs; the first is warm-up, the throughput is images/s over the rest. Writes
benchmarks/results/scale.json (appends the rows it measured) and prints a markdown table with the machine's
load average before and after, since on a shared machine that decides the numbers."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks/results/scale.json"


def config(method: str, args: argparse.Namespace) -> dict:
    return {"method": method, "backbone": {"name": "resnet_compact", "width": args.width, "blocks": [1, 1, 1, 1]},
            "augment": "none", "in_channels": 3, "num_classes": 10, "temperature": 0.5, "projection_dim": 64,
            "queue_size": 1024, "momentum": 0.99,
            "training": {"epochs": args.epochs, "batch_size": args.batch, "lr": 0.05, "weight_decay": 0.0,
                         "optimizer": "sgd", "seed": 0}}


def worker(args: argparse.Namespace) -> None:
    import torch
    import torch.distributed as dist

    from unlearn.distributed import init_from_env
    from unlearn.pretraining import train_from_scratch

    torch.set_num_threads(args.threads)
    ctx = init_from_env(args.device)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(args.n, 3, 32, 32, generator=g).to(ctx.device)
    y = torch.randint(0, 10, (args.n,), generator=g).to(ctx.device)
    stamps: list[float] = []

    def tick(epoch: int, loss: float) -> None:
        if ctx.device.type == "cuda":
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())

    train_from_scratch(config(args.method, args), x, y, on_epoch_end=tick)
    if ctx.rank == 0:
        seconds = stamps[-1] - stamps[0]  # epochs 2..E; epoch 1 is warm-up
        images = args.n * (args.epochs - 1)
        Path(args.out).write_text(json.dumps({"images_per_s": images / seconds, "seconds": seconds}))
    if dist.is_initialized():
        dist.destroy_process_group()


def measure(method: str, procs: int, threads: int, args: argparse.Namespace) -> dict:
    out = Path(f"/tmp/unlearn-scale-{os.getpid()}.json")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(procs),
           __file__, "--worker", "--method", method, "--threads", str(threads), "--device", args.device,
           "--samples", str(args.n), "--batch", str(args.batch), "--epochs", str(args.epochs),
           "--width", str(args.width), "--out", str(out)]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=str(ROOT / "src"))
    load = os.getloadavg()[0]
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    row = json.loads(out.read_text())
    out.unlink()
    return {"method": method, "device": args.device, "procs": procs, "threads_per_proc": threads,
            "global_batch": args.batch, "n": args.n, "width": args.width, "load_before": round(load, 2),
            "load_after": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(), **row,
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--method", default="simclr")
    p.add_argument("--methods", nargs="+", default=["supervised", "simclr"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--procs", type=int, nargs="+", default=None)
    p.add_argument("--samples", dest="n", type=int, default=1024)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--width", type=int, default=16)
    args = p.parse_args()
    if args.worker:
        return worker(args)
    if args.device == "cpu":
        plan = [(1, 1), (1, 2), (2, 1)] if args.procs is None else [(n, 1) for n in args.procs]
    else:
        plan = [(n, 4) for n in (args.procs or [1])]
    rows = [measure(m, procs, threads, args) for m in args.methods for procs, threads in plan]
    old = json.loads(RESULTS.read_text()) if RESULTS.is_file() else []
    RESULTS.write_text(json.dumps(old + rows, indent=1) + "\n")
    print("| method | device | processes x threads | global batch | images/s | load avg before / after |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {r['device']} | {r['procs']} x {r['threads_per_proc']} | {r['global_batch']} | "
              f"{r['images_per_s']:.0f} | {r['load_before']} / {r['load_after']} |")


if __name__ == "__main__":
    main()
