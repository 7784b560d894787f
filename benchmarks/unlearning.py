"""Unlearning benchmark in the SalUn layout: per model family, forget kind and method — UA, RA, TA,
MIA-efficacy, EncoderMI AUC (encoders), the strongest attack's AUC, Avg. Gap to retrain, wall seconds and the
ratio to retrain's — mean ± std over seeds. Writes benchmarks/results/unlearning.md.

    .venv/bin/python benchmarks/unlearning.py                      # digits, supervised, 3 seeds
    .venv/bin/python benchmarks/unlearning.py --dataset cifar10 --families supervised --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
from harness import avg_gap, build_scenario, mean_std, run_methods, with_overrides

from unlearn.config import load_params
from unlearn.io import write_text

ROOT = Path(__file__).resolve().parents[1]
ZIP = ROOT.parent / "shared" / "datasets" / "cifar10-jpeg.zip"
SUPERVISED = ["retrain", "finetune", "ga", "neggrad_plus", "rl", "l1_sparse", "scrub", "salun", "gp"]
ENCODER = ["retrain", "finetune", "ga", "neggrad_plus", "l1_sparse", "muc", "gp"]
DATASETS = {
    "digits": {},
    "cifar10": {"prepare": {"source": "imagefolder", "root": str(ZIP), "max_images": 10000,
                            "splits": {"train": 2500, "reference": 2500, "test": 5000}},
                "pretrain": {"backbone": {"name": "resnet_compact", "width": 8}, "augment": "cifar_weak",
                             "epochs": 30, "batch_size": 128, "lr": 0.05, "optimizer": "sgd",
                             "weight_decay": 5e-4}},
}
ENCODER_PRETRAIN = {"digits": {"augment": "digits", "epochs": 150, "batch_size": 128, "lr": 0.001,
                               "optimizer": "adam"},
                    "cifar10": {"augment": "cifar_weak", "epochs": 100, "lr": 0.001, "optimizer": "adam"}}
KINDS = {"random 10%": {"kind": "random", "fraction": 0.1}, "class 3": {"kind": "class", "classes": [3]}}


def scenario_params(base, dataset: str, family: str, kind: str, seed: int):
    over = {**DATASETS[dataset]}
    pre = dict(over.get("pretrain", {}), method=family, seed=seed)
    if family != "supervised":
        pre.update(ENCODER_PRETRAIN[dataset])
    over["pretrain"] = pre
    over["prepare"] = dict(over.get("prepare", {}), seed=seed)
    over["forget"] = dict(KINDS[kind], seed=seed)
    over["unlearn"] = {"seed": seed}
    over["verify"] = {"require_power": False}
    return with_overrides(base, over)


def run(dataset: str, families: list[str], kinds: list[str], seeds: list[int], methods: list[str] | None,
        cache: bool = True):
    base = load_params(ROOT / "params.yaml")
    results: dict[tuple, list[dict]] = {}
    for family in families:
        names = methods or (SUPERVISED if family == "supervised" else ENCODER)
        for kind in kinds:
            for seed in seeds:
                params = scenario_params(base, dataset, family, kind, seed)
                start = time.perf_counter()
                res = run_methods(build_scenario(params, cache=cache), params, names)
                logging.info("%s %s %s seed %d done in %.0fs", dataset, family, kind, seed,
                             time.perf_counter() - start)
                for model, r in res.items():
                    results.setdefault((family, kind, model), []).append(r)
                    e = r["evidence"]
                    logging.info("  %-12s UA %5.1f RA %5.1f TA %5.1f MIA %.3f AUC %.3f %6.1fs %s", model, e["UA"],
                                 e["RA"], e["TA"], e["mia_efficacy"], e["attack_auc"], r["seconds"], r["verdict"])
    return results


def table(results: dict, dataset: str, seeds: list[int]) -> str:
    lines = [f"### {dataset} ({len(seeds)} seeds: {', '.join(map(str, seeds))})", "",
             "| family | forget | method | UA | RA | TA | MIA-eff. (%) | EncoderMI AUC | attack AUC (strongest) "
             "| Avg. Gap | seconds | × retrain time | verdicts |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for (family, kind, model), runs in results.items():
        ref = results[(family, kind, "retrain")]
        ev = [r["evidence"] for r in runs]
        gaps = [avg_gap(e, rr["evidence"]) for e, rr in zip(ev, ref)]
        ratio = [r["seconds"] / rr["seconds"] for r, rr in zip(runs, ref)]
        enc = mean_std([e["attacks"]["encodermi"]["auc"] for e in ev]) if "encodermi" in ev[0]["attacks"] else "–"
        verdicts = ", ".join(f"{v}×{n}" for v, n in zip(*np.unique([r["verdict"] for r in runs],
                                                                    return_counts=True)))
        lines.append(f"| {family} | {kind} | {model} | {mean_std([e['UA'] for e in ev])} | "
                     f"{mean_std([e['RA'] for e in ev])} | {mean_std([e['TA'] for e in ev])} | "
                     f"{mean_std([100 * e['mia_efficacy'] for e in ev])} | {enc} | "
                     f"{mean_std([e['attack_auc'] for e in ev])} | {mean_std(gaps) if model != 'original' or True else ''} | "
                     f"{mean_std([r['seconds'] for r in runs])} | {mean_std(ratio)} | {verdicts} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=sorted(DATASETS), default="digits")
    p.add_argument("--families", nargs="+", default=["supervised"])
    p.add_argument("--kinds", nargs="+", choices=sorted(KINDS), default=sorted(KINDS, reverse=True))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--methods", nargs="+", default=None)
    p.add_argument("--out", default=str(ROOT / "benchmarks/results/unlearning.md"))
    p.add_argument("--no-cache", action="store_true",
                   help="train original and retrain afresh (their cached seconds come from earlier runs)")
    ns = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("unlearn.training").setLevel(logging.WARNING)
    if ns.dataset == "cifar10" and not ZIP.is_file():
        raise SystemExit(f"skipped: {ZIP} not found (the CIFAR-10 rows need ../shared/datasets/cifar10-jpeg.zip)")
    results = run(ns.dataset, ns.families, ns.kinds, ns.seeds, ns.methods, cache=not ns.no_cache)
    text = table(results, ns.dataset, ns.seeds)
    print(text)
    out = Path(ns.out)
    previous = out.read_text() if out.is_file() else ""
    write_text(out, merge_section(previous, text, ns.dataset, ns.families))


def merge_section(previous: str, section: str, dataset: str, families: list[str]) -> str:
    """Keep other datasets' sections in the results file; replace this one's."""
    header = ("# Unlearning benchmark\n\nGenerated by `benchmarks/unlearning.py`; see the README for the protocol. "
              "Each seed re-draws the splits, the forget set and the model initialisation. Verdicts use the "
              "default thresholds with `require_power: false`. Wall seconds depend on machine load: the committed "
              "digits run used `--no-cache` on an otherwise idle 2-core CPU, so original and retrain were trained "
              "and timed in the same run as the methods.\n\n")
    marker = f"<!-- {dataset}:{'+'.join(families)} -->"
    blocks = [b for b in previous.split("<!-- ")[1:] if not b.startswith(marker[5:])]
    body = "".join("<!-- " + b for b in blocks)
    return header + body.replace(header, "") + f"{marker}\n{section}\n"


if __name__ == "__main__":
    main()
