"""Unlearning rows on a leaking encoder scenario (issue 13): SimCLR / MoCo v2 / BYOL on a small CIFAR-10 member set,
random forget set of 100 members. Every method of the encoder benchmark plus a second retrain from another seed
(the noise floor) and both GP forms: the paper's Algorithm 2 (``gp:paper``) and the encoder descending term
(``gp``, ``match: outputs``, methods/encoder_targets.py). Each model is scored with the verify stage's attacks,
including the calibrated ``encoder_lira`` against 2 shadow encoders trained once per scenario, and judged by the
certificate rules. Writes benchmarks/results/encoder_unlearning.md from the raw rows in
benchmarks/results/records/encoder_unlearning.jsonl.

    .venv/bin/python benchmarks/encoder_unlearning.py --scenario simclr-250-weak-8-300 --seeds 0
    .venv/bin/python benchmarks/encoder_unlearning.py --from-records benchmarks/results/records/encoder_unlearning.jsonl

Scenario names are those of benchmarks/encoder_leakage.py (``family-members-augment-width-epochs``). Utility is the
linear probe's accuracy (fitted on retain); Avg. Gap = mean |Δ to retrain| over probe UA, RA, TA and 100 × the AUC of
the attack that is strongest on the original (forget vs test).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
from encoder_leakage import VIEWS, params_for, parse_config
from harness import _unlearn, build_scenario, mean_std, read_records, require_cifar, with_overrides

from unlearn import certificate as cert_lib
from unlearn.io import write_text
from unlearn.stages.unlearn import unlearning_data
from unlearn.verification import build_evaluation_sets, collect_outputs, score_outputs, train_shadow_reference

ROOT = Path(__file__).resolve().parents[1]
RECORDS = ROOT / "benchmarks" / "results" / "records" / "encoder_unlearning.jsonl"
OUT = ROOT / "benchmarks" / "results" / "encoder_unlearning.md"
# row name -> (method, overrides of params.unlearn.<method>)
ROWS = {
    "retrain": ("retrain", {}),
    "retrain:reseed": ("retrain", {"seed": 1000}),
    "finetune": ("finetune", {}),
    "ga": ("ga", {}),
    "neggrad_plus": ("neggrad_plus", {}),
    "l1_sparse": ("l1_sparse", {}),
    "muc": ("muc", {}),
    "gp:paper": ("gp", {"preset": "paper"}),
    "gp": ("gp", {}),  # the default: match outputs -> the encoder term for encoders
    "gp:lr0.05": ("gp", {"lr": 0.05}),  # the encoder term with 5x the step size
    "gp:rank": ("gp", {"compare": "quantiles"}),  # rank-mapped targets instead of paired non-members
}


def run(scenario_name: str, seed: int, rows: list[str], records: Path | None) -> list[dict]:
    cfg = parse_config(scenario_name)
    params = with_overrides(params_for(cfg), {"pretrain": {"seed": seed}, "unlearn": {"seed": seed},
                                              "forget": {"seed": seed}})
    scenario = build_scenario(params)
    device = torch.device("cpu")
    udata = unlearning_data(scenario.data, scenario.forget, device)
    sets = build_evaluation_sets(scenario.data, scenario.forget, device)
    start = time.perf_counter()
    shadow = train_shadow_reference(scenario.original.config(), scenario.data, sets, n_shadow=2,
                                    seed=params.verify.seed, encoder_views=VIEWS)
    shadow_seconds = time.perf_counter() - start
    th = params.verify.thresholds

    def evidence(model):
        out = collect_outputs(model, sets, encoder_views=VIEWS, seed=params.verify.seed, shadow=shadow)
        return score_outputs(out, sets.y, n_bootstrap=params.verify.bootstrap, seed=params.verify.seed)

    results = {"original": {"evidence": evidence(scenario.original), "seconds": scenario.pretrain_seconds}}
    out: list[dict] = []
    for name in ["retrain", *[r for r in rows if r != "retrain"]]:
        method, overrides = ROWS[name]
        base = getattr(params.unlearn, method)
        # a preset is applied on validation (GP_PRESETS), other overrides on top of params.unlearn.<method>
        mp = (type(base).model_validate(overrides) if "preset" in overrides
              else base.model_copy(update=overrides) if overrides else None)
        model, seconds = _unlearn(scenario, udata, params, method, mp)
        results[name] = {"evidence": evidence(model), "seconds": seconds}
        logging.info("%s seed %d %s: %.0fs", scenario_name, seed, name, seconds)
        # each row is written as soon as it is measured (original and retrain come first: every verdict needs them)
        for done in (["original", "retrain"] if name == "retrain" else [name]):
            out.append(_row(scenario_name, seed, done, results, shadow_seconds, th))
            if records is not None:
                with open(records, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(out[-1]) + "\n")
    return out


def _row(scenario_name: str, seed: int, name: str, results: dict, shadow_seconds: float, th) -> dict:
    ref, orig = results["retrain"]["evidence"], results["original"]["evidence"]
    ev, attack = results[name]["evidence"], orig["strongest_attack"]
    if name == "original":
        negative = cert_lib.control_results(orig, ref, th)["negative"]
        verdict, reasons = ("caught" if negative["verdict"] == "fail" else "not caught"), negative["reasons"]
    else:
        verdict, reasons = cert_lib.decide(ev, orig, ref, th)
    gap = float(np.mean([abs(ev[k] - ref[k]) for k in ("UA", "RA", "TA")]
                        + [100 * abs(ev["attacks"][attack]["auc"] - ref["attacks"][attack]["auc"])]))
    return {"scenario": scenario_name, "seed": seed, "model": name, "UA": ev["UA"], "RA": ev["RA"], "TA": ev["TA"],
            "attack": attack, "attack_auc": ev["attacks"][attack]["auc"], "attack_ci": ev["attacks"][attack]["auc_ci"],
            "strongest_attack": ev["strongest_attack"], "strongest_auc": ev["attack_auc"], "avg_gap": gap,
            "seconds": results[name]["seconds"], "shadow_seconds": shadow_seconds, "verdict": verdict,
            "reasons": reasons,
            "aucs": {a: m["auc"] for a, m in ev["attacks"].items()},
            "device": f"CPU ({torch.get_num_threads()} threads)"}


def table(rows: list[dict]) -> str:
    lines = ["# Unlearning a leaking encoder (CIFAR-10 subset, CPU)", "",
             "Generated by `benchmarks/encoder_unlearning.py --from-records "
             "benchmarks/results/records/encoder_unlearning.jsonl`. Machine: "
             f"{', '.join(sorted({r['device'] for r in rows}))} on a shared 2-core host. Scenario names as in "
             "`encoder_leakage.md`; forget = 100 random members; attacks = the verify stage's, with 2 shadow encoders. "
             "UA/RA/TA from a linear probe fitted on retain. Avg. Gap = mean |Δ to retrain| over UA, RA, TA and "
             "100 × AUC of the attack strongest on the original. Verdicts by the certificate rules.", "",
             "| scenario | model | seeds | UA | RA | TA | attack AUC (forget vs test) [95% CI] | Avg. Gap | seconds "
             "(× retrain) | verdicts |",
             "| --- | --- | ---: | --- | --- | --- | --- | --- | ---: | --- |"]

    def cell(values: list[float]) -> str:
        return f"{values[0]:.1f}" if len(values) == 1 else mean_std(values)

    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["scenario"], r["model"]), []).append(r)
    order = ["original", *ROWS]
    for (scenario, model), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], order.index(kv[0][1]))):
        retrain = np.mean([r["seconds"] for r in groups.get((scenario, "retrain"), rs)])
        auc = (f"{rs[0]['attack_auc']:.3f} [{rs[0]['attack_ci'][0]:.3f}, {rs[0]['attack_ci'][1]:.3f}]" if len(rs) == 1
               else mean_std([r["attack_auc"] for r in rs]))
        secs = np.mean([r["seconds"] for r in rs])
        ratio = "pretraining" if model == "original" else f"{secs / retrain:.2f}×"
        lines.append(f"| {scenario} | {model} | {len(rs)} | {cell([r['UA'] for r in rs])} | "
                     f"{cell([r['RA'] for r in rs])} | {cell([r['TA'] for r in rs])} | {rs[0]['attack']} {auc} | "
                     f"{cell([r['avg_gap'] for r in rs])} | {secs:.0f} ({ratio}) | "
                     f"{', '.join(r['verdict'] for r in rs)} |")
    reasons = [f"- {r['model']} (seed {r['seed']}): " + "; ".join(r["reasons"]) for r in rows
               if r.get("reasons") and r["verdict"] in ("fail", "caught")]
    if reasons:
        lines += ["", "Why (the certificate's reasons):", "", *reasons]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenario", nargs="+", default=["simclr-250-weak-8-300"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    p.add_argument("--records", default=str(RECORDS))
    p.add_argument("--from-records", nargs="+", default=None)
    p.add_argument("--threads", type=int, default=1)
    ns = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if not ns.from_records:
        require_cifar()
        torch.set_num_threads(ns.threads)
        for name in ns.scenario:
            for seed in ns.seeds:
                run(name, seed, ns.rows, Path(ns.records) if ns.records else None)
    paths = ns.from_records or ([ns.records] if ns.records else [])
    rows = read_records(paths)
    write_text(OUT, table(rows))
    print(OUT.read_text())


if __name__ == "__main__":
    main()
