"""Attack benchmark: every membership-inference attack's AUC and TPR at 1% FPR, forget vs non-member test samples
and train (retain) vs test, on the original, the retrain-from-scratch reference and the GP-unlearned model.
Scenarios: digits with params.yaml's defaults (class-wise and random 10% forgetting) and a CIFAR-10 subset from
../shared/datasets/cifar10-jpeg.zip (random 10% by default: the unlearning challenge's setting; skipped, with the
reason printed, when the zip is absent). Writes benchmarks/results/attacks.md after every scenario (atomically).

    .venv/bin/python benchmarks/attacks.py                      # digits (2 kinds) + CIFAR-10 subset (random)
    .venv/bin/python benchmarks/attacks.py --datasets digits
    .venv/bin/python benchmarks/attacks.py --datasets cifar10 --cifar-kinds "random 10%" "class 3"
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
from harness import CIFAR_ZIP, Scenario, build_scenario, forget_ids, with_overrides
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedShuffleSplit, cross_val_score

from unlearn import certificate as cert_lib
from unlearn.config import Params, load_params
from unlearn.data.sources import load_source
from unlearn.io import write_text
from unlearn.methods import get_method
from unlearn.mia import negative_loss
from unlearn.stages.unlearn import unlearning_data
from unlearn.training import resolve_device, seed_everything
from unlearn.verification import build_evaluation_sets, collect_outputs, score_outputs, train_shadow_reference

ROOT = Path(__file__).resolve().parents[1]
ZIP = CIFAR_ZIP
MODELS = ("original", "retrain", "gp")
KINDS = {"class 3": {"kind": "class", "classes": [3]}, "random 10%": {"kind": "random", "fraction": 0.1}}
DATASETS = {
    "digits": {},  # params.yaml as it is
    "cifar10": {"prepare": {"source": "imagefolder", "root": str(ZIP), "max_images": 5000,
                            "splits": {"train": 2500, "reference": 1000, "test": 1500}},
                # width 8 (8->64 channels): width 16 took 15 min for the original alone on the shared 2-core CPU
                "pretrain": {"backbone": {"name": "resnet_compact", "width": 8, "blocks": [1, 1, 1, 1]},
                             "augment": "cifar_weak", "epochs": 40, "batch_size": 128, "lr": 0.05,
                             "optimizer": "sgd", "weight_decay": 5e-4}},
}
KIT = {"original": 0.579, "retrain": 0.502}  # NeurIPS 2023 unlearning challenge starting kit, CIFAR-10 ResNet-18


def kit_mia_accuracy(member_loss: np.ndarray, nonmember_loss: np.ndarray, seed: int = 0) -> float:
    """The unlearning-challenge kit's ``simple_mia``: logistic regression on the per-sample loss, class-balanced
    by subsampling the larger side, mean accuracy over 10 stratified shuffle splits."""
    rng = np.random.default_rng(seed)
    n = min(len(member_loss), len(nonmember_loss))
    m, o = rng.permutation(member_loss)[:n], rng.permutation(nonmember_loss)[:n]
    x, y = np.r_[m, o].reshape(-1, 1), np.r_[np.ones(n), np.zeros(n)]
    cv = StratifiedShuffleSplit(n_splits=10, random_state=seed)
    return float(cross_val_score(LogisticRegression(), x, y, cv=cv, scoring="accuracy").mean())


def measure(scenario: Scenario, params: Params) -> dict:
    """Train shadows, unlearn (retrain, GP), and score every model with every attack."""
    device = resolve_device(params.device)
    sets = build_evaluation_sets(scenario.data, scenario.forget, device)
    start = time.perf_counter()
    shadow = train_shadow_reference(scenario.original.config(), scenario.data, sets,
                                    n_shadow=params.verify.shadow_models, seed=params.verify.seed)
    shadow_seconds = time.perf_counter() - start
    print(f"    {params.verify.shadow_models} shadow models in {shadow_seconds:.0f}s", flush=True)
    udata = unlearning_data(scenario.data, scenario.forget, device)
    models = {"original": (scenario.original, scenario.pretrain_seconds)}
    for m in MODELS[1:]:
        generator = seed_everything(params.unlearn.seed)
        start = time.perf_counter()
        models[m] = (get_method(m)(scenario.original, udata, getattr(params.unlearn, m), generator),
                     time.perf_counter() - start)
        print(f"    {m} in {models[m][1]:.0f}s", flush=True)
    out = {}
    for name, (model, seconds) in models.items():
        outputs = collect_outputs(model, sets, encoder_views=params.verify.encoder_views, seed=params.verify.seed,
                                  shadow=shadow)
        ev = score_outputs(outputs, sets.y, n_bootstrap=params.verify.bootstrap, seed=params.verify.seed)
        loss = {k: -negative_loss(outputs.logits[k], sets.y[k]) for k in ("forget", "nonmember")}
        out[name] = {"evidence": ev, "seconds": seconds,
                     "kit": kit_mia_accuracy(loss["forget"], loss["nonmember"], params.verify.seed)}
    th = params.verify.thresholds
    controls = cert_lib.control_results(out["original"]["evidence"], out["retrain"]["evidence"], th)
    out["original"]["verdict"] = "caught" if controls["negative"]["verdict"] == "fail" else "NOT caught"
    for m in MODELS[1:]:
        out[m]["verdict"] = cert_lib.decide(out[m]["evidence"], out["original"]["evidence"],
                                            out["retrain"]["evidence"], th)[0]
    return {"models": out, "shadow_seconds": shadow_seconds, "n": out["original"]["evidence"]["n"]}


def cell(m: dict, ci: bool = False) -> str:
    auc = f"{m['auc']:.3f}" + (f" [{m['auc_ci'][0]:.2f}, {m['auc_ci'][1]:.2f}]" if ci else "")
    return f"{auc} / {m['tpr_at_1pct_fpr']:.3f}"


def section(dataset: str, kind: str, res: dict, params: Params) -> str:
    n, mods = res["n"], res["models"]
    pre = params.pretrain
    lines = [f"### {dataset}, forget {kind}", "",
             f"{pre.method} {pre.backbone.name} (width {pre.backbone.width}), {pre.epochs} epochs {pre.optimizer} "
             f"lr {pre.lr}, augment {pre.augment}; retain {n['retain']}, forget {n['forget']}, non-member test "
             f"{n['nonmember']}, test {n['test']}; {params.verify.shadow_models} shadow models on reference halves "
             f"({res['shadow_seconds']:.0f}s).", "",
             "| model | UA | RA | TA | MIA-eff. | kit MIA acc. (loss, forget vs test) | strongest attack | verdict "
             "| seconds |", "|---|---|---|---|---|---|---|---|---|"]
    for name, r in mods.items():
        e = r["evidence"]
        lines.append(f"| {name} | {e['UA']:.1f} | {e['RA']:.1f} | {e['TA']:.1f} | {e['mia_efficacy']:.3f} | "
                     f"{r['kit']:.3f} | {e['strongest_attack']} {e['attack_auc']:.3f} | {r['verdict']} | "
                     f"{r['seconds']:.1f} |")
    lines += ["", "AUC [bootstrap 95% CI] / TPR@1% FPR:", "",
              "| attack | " + " | ".join(f"{m}: forget vs test" for m in mods) + " | "
              + " | ".join(f"{m}: train vs test" for m in mods) + " |",
              "|---|" + "---|" * (2 * len(mods))]
    for attack in mods["original"]["evidence"]["attacks"]:
        lines.append(f"| {attack} | " + " | ".join(cell(r["evidence"]["attacks"][attack], ci=True)
                                                   for r in mods.values())
                     + " | " + " | ".join(cell(r["evidence"]["train_vs_test"][attack]) for r in mods.values())
                     + " |")
    return "\n".join(lines) + "\n"


def kit_comparison(results: dict) -> str:
    rows = [f"- {ds}, forget {kind}: original {r['models']['original']['kit']:.3f}, retrain "
            f"{r['models']['retrain']['kit']:.3f}, GP {r['models']['gp']['kit']:.3f}"
            for (ds, kind), r in results.items()]
    return "\n".join([
        "## Against the published reference point", "",
        f"The NeurIPS 2023 unlearning challenge kit (CIFAR-10, ResNet-18, random forget set) reports MIA accuracy "
        f"{KIT['original']} on the original and {KIT['retrain']} on the retrained model: a logistic regression on "
        "the per-sample loss, forget vs test, class-balanced, 10 shuffle splits. The same measure here "
        "(`kit MIA acc.` column):", "", *rows, "",
        "The settings differ (the kit: ResNet-18 on 50,000 CIFAR-10 images, 5,000 forgotten; here a small CNN on "
        "2,500 images, 250 forgotten, and digits is not in the kit), so only the direction and the retrained model's "
        "~0.5 compare. On class-wise forgetting the kit's measure compares the forget set with test samples of the "
        "same class, which a model that never saw the class also tells apart a little (digits retrain: 0.59).", ""])


def document(results: dict, params_by: dict, skipped: list[str], seconds: float) -> str:
    head = ["# Membership-inference attacks: original vs retrain vs GP unlearning", "",
            "Generated by `benchmarks/attacks.py` (one seed; CPU). Attacks: threshold attacks on the stable logit "
            "margin, loss, confidence, entropy and modified entropy; the shadow-model attack (Shokri et al. 2017; "
            "one MLP on the sorted log-softmax + true-class logit margin, fitted on shadows trained with the "
            "original's recipe on reference halves); offline LiRA (Carlini et al. 2022; per-example OUT Gaussian "
            "of the logit margin from the same shadows, global variance). `forget vs test` = forget set vs "
            "held-out test samples of the forget set's classes (the certificate's comparison); `train vs test` = "
            "retain vs held-out test samples of the retained classes. TPR@1% FPR is the empirical TPR at the largest "
            "threshold with FPR <= 1% (with fewer than 100 non-members, that is the TPR at zero false positives). "
            "MIA-eff. = share of the forget set an SVC (retain vs test, confidence feature) calls non-member "
            "(SalUn's protocol). Verdicts use the certificate's rules with every attack above.", ""]
    if skipped:
        head += [f"Skipped: {s}" for s in skipped] + [""]
    body = [section(ds, kind, r, params_by[(ds, kind)]) for (ds, kind), r in results.items()]
    return "\n".join(head) + "\n" + kit_comparison(results) + "\n" + "\n".join(body) + \
        f"\nTotal wall time {seconds / 60:.1f} min.\n"


def run(datasets: list[str], kinds_by: dict[str, list[str]], on_result=None) -> tuple[dict, dict, list[str]]:
    base = load_params(ROOT / "params.yaml")
    results, params_by, skipped = {}, {}, []
    for ds in datasets:
        if ds == "cifar10" and not ZIP.is_file():
            skipped.append(f"cifar10: {ZIP} not found")
            print(f"skipping cifar10: {ZIP} not found", flush=True)
            continue
        overrides = {**DATASETS[ds], "verify": {"require_power": False}}
        first = with_overrides(base, {**overrides, "forget": KINDS[kinds_by[ds][0]]})
        start = time.perf_counter()
        raw = load_source(first.prepare.source, first.prepare.root, first.prepare.download)
        print(f"{ds}: loaded {len(raw.ids)} images in {time.perf_counter() - start:.0f}s", flush=True)
        scenario = None
        for kind in kinds_by[ds]:
            params = with_overrides(base, {**overrides, "forget": KINDS[kind]})
            if scenario is None:  # the original depends only on prepare/pretrain: trained once per dataset
                scenario = build_scenario(params, raw)
                print(f"{ds}: original trained in {scenario.pretrain_seconds:.0f}s", flush=True)
            scenario = Scenario(scenario.data, forget_ids(scenario.data, params), scenario.original,
                                scenario.pretrain_seconds, scenario.key)
            print(f"  {ds}, forget {kind} ({len(scenario.forget)} samples)", flush=True)
            results[(ds, kind)] = measure(scenario, params)
            params_by[(ds, kind)] = params
            for name, r in results[(ds, kind)]["models"].items():
                e = r["evidence"]
                print(f"    {name:9s} UA {e['UA']:5.1f} TA {e['TA']:5.1f} kit {r['kit']:.3f} " + " ".join(
                    f"{a} {m['auc']:.3f}" for a, m in e["attacks"].items()) + f" -> {r['verdict']}", flush=True)
            if on_result is not None:
                on_result(results, params_by, skipped)
    return results, params_by, skipped


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", choices=sorted(DATASETS), default=["digits", "cifar10"])
    p.add_argument("--digits-kinds", nargs="+", choices=sorted(KINDS), default=list(KINDS))
    p.add_argument("--cifar-kinds", nargs="+", choices=sorted(KINDS), default=["random 10%"])
    p.add_argument("--out", default=str(ROOT / "benchmarks/results/attacks.md"))
    ns = p.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")
    start = time.perf_counter()

    def save(results, params_by, skipped):  # after every scenario, so a long run keeps what it measured
        write_text(ns.out, document(results, params_by, skipped, time.perf_counter() - start))  # atomic

    results, params_by, skipped = run(ns.datasets, {"digits": ns.digits_kinds, "cifar10": ns.cifar_kinds}, save)
    text = document(results, params_by, skipped, time.perf_counter() - start)
    write_text(ns.out, text)
    print(text)


if __name__ == "__main__":
    main()
