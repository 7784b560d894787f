"""Ablation of the gradient-penalty method on one leaky scenario: stage, λ, μ, optimizer/lr, epochs.
The original and retrain models are built once; each variant starts from the same original.
Writes benchmarks/results/gp_ablation.md.

    .venv/bin/python benchmarks/gp_ablation.py --dataset cifar10
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from harness import avg_gap, build_scenario, run_methods, with_overrides
from unlearning import scenario_params

from unlearn.config import load_params
from unlearn.io import write_text

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {
    "default (memgp, λ=1, μ=0.1, adam 1e-3, 5 ep)": {},
    "μ=0 (gradient term only)": {"mu": 0.0},
    "λ=0 (signal term only)": {"lambda_gp": 0.0},
    "λ=0, μ=0 (= fine-tune + forget batches)": {"lambda_gp": 0.0, "mu": 0.0},
    "λ=10": {"lambda_gp": 10.0},
    "μ=1": {"mu": 1.0},
    "paired (Algorithm 1)": {"stage": "paired"},
    "sgd 0.01 (DESIGN §7 sketch)": {"optimizer": "sgd", "lr": 0.01},
    "sgd 0.01, paired": {"optimizer": "sgd", "lr": 0.01, "stage": "paired"},
    "2 epochs": {"epochs": 2},
    "10 epochs": {"epochs": 10},
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--dataset", default="cifar10")
    p.add_argument("--family", default="supervised")
    p.add_argument("--kind", default="random 10%")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(ROOT / "benchmarks/results/gp_ablation.md"))
    ns = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("unlearn.training").setLevel(logging.WARNING)
    base = scenario_params(load_params(ROOT / "params.yaml"), ns.dataset, ns.family, ns.kind, ns.seed)
    scenario = build_scenario(base)
    ref = run_methods(scenario, base, ["retrain"])
    rows = [("original", ref["original"]), ("retrain", ref["retrain"])]
    for name, over in VARIANTS.items():
        params = with_overrides(base, {"unlearn": {"gp": over}})
        start = time.perf_counter()
        res = run_methods(scenario, params, ["retrain", "gp"], reuse=ref)["gp"]
        e = res["evidence"]
        logging.info("%-45s UA %.1f RA %.1f TA %.1f MIA %.3f AUC %.3f %s (%.0fs)", name, e["UA"], e["RA"], e["TA"],
                     e["mia_efficacy"], e["attack_auc"], res["verdict"], time.perf_counter() - start)
        rows.append((name, res))
    lines = [f"# GP ablation: {ns.dataset}, {ns.family}, forget {ns.kind}, seed {ns.seed}", "",
             "| variant | UA | RA | TA | MIA-eff. (%) | attack AUC (strongest) | Avg. Gap | seconds | verdict |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in rows:
        e = r["evidence"]
        lines.append(f"| {name} | {e['UA']:.1f} | {e['RA']:.1f} | {e['TA']:.1f} | {100 * e['mia_efficacy']:.1f} | "
                     f"{e['attack_auc']:.3f} ({e['strongest_attack']}) | "
                     f"{avg_gap(e, ref['retrain']['evidence']):.2f} | {r['seconds']:.1f} | {r['verdict']} |")
    text = "\n".join(lines) + "\n"
    print(text)
    write_text(ns.out, text)


if __name__ == "__main__":
    main()
