"""Ablation of the gradient-penalty method on one leaky scenario: stage, λ, μ, optimizer/lr, epochs.
The original and retrain models are built once; each variant starts from the same original.
Writes benchmarks/results/gp_ablation.md.

    .venv/bin/python benchmarks/gp_ablation.py --dataset cifar10
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from harness import avg_gap, build_scenario, run_methods, with_overrides
from unlearning import OUTPUTS, PAPER, scenario_params

from unlearn.config import load_params
from unlearn.io import write_text

ROOT = Path(__file__).resolve().parents[1]
STORE = Path(__file__).resolve().parent / ".cache" / "gp_ablation.json"  # lets an interrupted run resume
FW = {"walk": "forget", "epochs": 10, "normalize": True}  # walk the forget set, scale-free terms
_VARIANTS = {  # changes of the paper preset (the default until issue 14)
    "preset paper (memgp, walk retain, 5 epochs, SGD 0.01, clip 1, λ=1, μ=0.1)": {},
    "walk forget, normalized, 10 epochs": FW,
    "... lr 0.001": {**FW, "lr": 0.001},
    "... lr 0.001, λ=0, μ=0 (= fine-tune with the same budget)": {**FW, "lr": 0.001, "lambda_gp": 0.0, "mu": 0.0},
    "... lr 0.001, λ=0 (loss matching only)": {**FW, "lr": 0.001, "lambda_gp": 0.0, "mu": 1.0},
    "... lr 0.001, λ=0.1": {**FW, "lr": 0.001, "lambda_gp": 0.1},
    "... lr 0.001, μ=1": {**FW, "lr": 0.001, "mu": 1.0},
    "... lr 0.001, μ=1, confidence matching": {**FW, "lr": 0.001, "mu": 1.0, "match": "confidence"},
    "... lr 0.001, penalty on features": {**FW, "lr": 0.001, "penalty_on": "features"},
    "... adam 1e-4, no clipping": {**FW, "optimizer": "adam", "lr": 1e-4, "max_grad_norm": None},
    "... lr 0.001, 3 epochs": {**FW, "lr": 0.001, "epochs": 3},
    "... lr 0.001, paired (Algorithm 1)": {**FW, "lr": 0.001, "stage": "paired"},
    "walk retain, normalized, lr 0.001, 5 epochs": {"normalize": True, "lr": 0.001},
    "... retain batch 256, forget batch 16": {"normalize": True, "lr": 0.001, "batch_size": 256,
                                              "forget_batch_size": 16},
    "compare quantiles (default otherwise)": {"compare": "quantiles"},
    "match outputs, μ=1, λ=0, walk forget, 40 epochs": OUTPUTS,
    "... 20 epochs": {**OUTPUTS, "epochs": 20},
    "... λ=0.01 (input gradients, quantiles)": {**OUTPUTS, "lambda_gp": 0.01, "compare": "quantiles"},
    "... λ=0.1 (input gradients, quantiles)": {**OUTPUTS, "lambda_gp": 0.1, "compare": "quantiles"},
    "... λ=1 (input gradients, means)": {**OUTPUTS, "lambda_gp": 1.0},
}
VARIANTS = {name: {**PAPER, **over} for name, over in _VARIANTS.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--dataset", default="cifar10")
    p.add_argument("--family", default="supervised")
    p.add_argument("--kind", default="random 10%")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(ROOT / "benchmarks/results/gp_ablation.md"))
    p.add_argument("--only-measured", action="store_true", help="write the table from measured variants only")
    ns = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("unlearn.training").setLevel(logging.WARNING)
    base = scenario_params(load_params(ROOT / "params.yaml"), ns.dataset, ns.family, ns.kind, ns.seed)
    scenario = build_scenario(base)
    ref = run_methods(scenario, base, ["retrain"])
    store = STORE.with_name(f"gp_ablation-{scenario.key}-{ns.kind.replace(' ', '_').replace('%', '')}.json")
    rows = [("original", ref["original"]), ("retrain", ref["retrain"])]
    done = json.loads(store.read_text()) if store.is_file() else {}
    skipped: list[str] = []
    for name, over in VARIANTS.items():
        if name in done:  # measured by an earlier (interrupted) run of this script
            rows.append((name, done[name]))
            continue
        if ns.only_measured:
            skipped.append(name)
            continue
        params = with_overrides(base, {"unlearn": {"gp": over}})
        start = time.perf_counter()
        res = run_methods(scenario, params, ["retrain", "gp"], reuse=ref)["gp"]
        e = res["evidence"]
        logging.info("%-45s UA %.1f RA %.1f TA %.1f MIA %.3f AUC %.3f %s (%.0fs)", name, e["UA"], e["RA"], e["TA"],
                     e["mia_efficacy"], e["attack_auc"], res["verdict"], time.perf_counter() - start)
        rows.append((name, res))
        done[name] = {"evidence": res["evidence"], "seconds": res["seconds"], "verdict": res["verdict"]}
        write_text(store, json.dumps(done, default=float))
    lines = [f"# GP ablation: {ns.dataset}, {ns.family}, forget {ns.kind}, seed {ns.seed}", "",
             "Scenario as in `benchmarks/unlearning.py` (`scenario_params`); every variant starts from the same "
             "original and is compared with the same retrain reference; all other GP knobs at their params.yaml "
             "defaults. Seconds are the method's own wall time on this machine (other jobs may share it).", "",
             "| variant | UA | RA | TA | MIA-eff. (%) | attack AUC (strongest) | Avg. Gap | seconds | verdict |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in rows:
        e = r["evidence"]
        lines.append(f"| {name} | {e['UA']:.1f} | {e['RA']:.1f} | {e['TA']:.1f} | {100 * e['mia_efficacy']:.1f} | "
                     f"{e['attack_auc']:.3f} ({e['strongest_attack']}) | "
                     f"{avg_gap(e, ref['retrain']['evidence']):.2f} | {r['seconds']:.1f} | {r['verdict']} |")
    if skipped:
        lines += ["", "Not measured in this run (CPU time): " + "; ".join(skipped) + "."]
    text = "\n".join(lines) + "\n"
    print(text)
    write_text(ns.out, text)


if __name__ == "__main__":
    main()
