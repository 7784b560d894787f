"""How much a contrastive encoder leaks on CPU, and to which attack: member-set size, pretraining epochs,
augmentation strength and backbone width, for SimCLR, MoCo v2 and BYOL on a CIFAR-10 subset. Writes
benchmarks/results/encoder_leakage.md from raw rows in benchmarks/results/records/encoder_leakage.jsonl.

One long pretraining run per config; the attacks are evaluated at checkpoints of that run (epochs 100, 300, 600
by default), not in separate runs. Each checkpoint is scored with every encoder attack of the verify stage
(:func:`unlearn.verification.score_outputs`): EncoderMI threshold (mean view cosine), EncoderMI classifier
(logistic) and EncoderMI-V (gradient boosting, cross-fitted), the probe-confidence attacks (CMIA-style, on a
linear probe fitted on retain), and the calibrated encoder LiRA against S reference encoders trained with the same
recipe on halves of the reference split (checkpointed at the same epochs). Two comparisons per attack: train vs
test (retain vs test) and forget vs test (a random forget set of ``--forget`` members vs the test split), and the
certificate's attack rule on the latter ("caught": some attack's bootstrap CI lies wholly above 0.5 +
auc_tolerance). ``--retrain`` also trains the retrain reference (members minus forget set) and scores it: the
positive control (it must *not* be caught).

    .venv/bin/python benchmarks/encoder_leakage.py --configs simclr-500-weak-16 --records \
        benchmarks/results/records/encoder_leakage.jsonl          # one config; appends its rows
    .venv/bin/python benchmarks/encoder_leakage.py --from-records benchmarks/results/records/encoder_leakage.jsonl

Run it with one torch thread (``--threads 1``, default) and in the background; every checkpoint's row is written as
soon as it is measured.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from harness import CIFAR_ZIP, forget_ids, prepared_in_memory, read_records, require_cifar, with_overrides

from unlearn import certificate as cert_lib
from unlearn.config import Params
from unlearn.io import write_text
from unlearn.pretraining import learner_config, train_from_scratch
from unlearn.shadow_models import shadow_config, shadow_halves, shadow_outputs
from unlearn.training import to_tensor
from unlearn.verification import build_evaluation_sets, collect_outputs, score_outputs, shadow_reference

ROOT = Path(__file__).resolve().parents[1]
RECORDS = ROOT / "benchmarks" / "results" / "records" / "encoder_leakage.jsonl"
OUT = ROOT / "benchmarks" / "results" / "encoder_leakage.md"
N_TEST = 1000
N_FORGET = 100
N_REFERENCE_MODELS = 2
VIEWS = 8
FAMILY_PRETRAIN = {  # as benchmarks/unlearning.py's CIFAR-10 encoders: Adam 1e-3, constant lr
    "simclr": {"temperature": 0.5},
    "moco": {"temperature": 0.2, "queue_size": 256, "momentum": 0.99},  # queue <= members: no stale self-keys
    "byol": {"momentum": 0.99},
}


def parse_config(name: str) -> dict:
    """``family-members-augment-width[-epochs]``, e.g. ``simclr-500-weak-16`` (augment: weak = crop 0.8-1 + flip,
    strong = SimCLR's crop 0.2-1, flip, colour jitter, grayscale)."""
    parts = name.split("-")
    family, members, aug, width = parts[:4]
    epochs = int(parts[4]) if len(parts) > 4 else 600
    if family not in FAMILY_PRETRAIN or aug not in ("weak", "strong"):
        raise ValueError(f"bad config {name!r}: family in {sorted(FAMILY_PRETRAIN)}, augment weak|strong")
    return {"name": name, "family": family, "members": int(members), "augment": aug, "width": int(width),
            "epochs": epochs}


def checkpoints(epochs: int) -> list[int]:
    return [e for e in (100, 300, 600, 1000) if e < epochs] + [epochs]


def params_for(cfg: dict) -> Params:
    n = cfg["members"]
    return with_overrides(Params(), {
        "device": "cpu",
        "prepare": {"source": "imagefolder", "root": str(CIFAR_ZIP), "max_images": 2 * n + N_TEST,
                    "splits": {"train": n, "reference": n, "test": N_TEST}},
        "pretrain": {"method": cfg["family"], "backbone": {"name": "resnet_compact", "width": cfg["width"]},
                     "augment": "cifar_weak" if cfg["augment"] == "weak" else "cifar_simclr",
                     "epochs": cfg["epochs"], "batch_size": 128, "lr": 1e-3, "optimizer": "adam",
                     "weight_decay": 0.0, "projection_dim": 64, **FAMILY_PRETRAIN[cfg["family"]]},
        "forget": {"kind": "random", "fraction": min(N_FORGET / n, 0.5), "seed": 0},
        "verify": {"encoder_views": VIEWS},
    })


class _Clock:
    """Training seconds so far, measurement time excluded."""

    def __init__(self) -> None:
        self.start, self.measuring = time.perf_counter(), 0.0

    def train_seconds(self) -> float:
        return time.perf_counter() - self.start - self.measuring


def train_with_checkpoints(config: dict, images, labels, at: list[int], measure, desc: str) -> tuple[float, _Clock]:
    """Train from scratch and call ``measure(learner, epoch, clock)`` at each epoch in ``at`` (torch RNG and train mode
    restored, so training continues as if uninterrupted). Returns the training seconds (measurement excluded)
    and the clock (``measure`` may read it)."""
    clock = _Clock()

    def monitor(learner, epoch: int) -> None:
        if epoch not in at:
            return
        start, rng, was_training = time.perf_counter(), torch.get_rng_state(), learner.training
        measure(learner, epoch, clock)
        torch.set_rng_state(rng)
        learner.train(was_training)
        clock.measuring += time.perf_counter() - start

    train_from_scratch(config, images, labels, desc=desc, monitor=monitor, monitor_every=min(at))
    return clock.train_seconds(), clock


def run_config(cfg: dict, records: Path | None, retrain: bool) -> list[dict]:
    """Reference encoders first (their outputs at every checkpoint kept in memory), then the original (and the
    retrain), each checkpoint scored and written the moment it is reached, so a stopped run keeps its rows."""
    params = params_for(cfg)
    data = prepared_in_memory(params)
    forget = forget_ids(data, params)
    device = torch.device("cpu")
    sets = build_evaluation_sets(data, forget, device)
    config = learner_config(params.pretrain, data.images.shape[-1], len(data.classes))
    at = checkpoints(cfg["epochs"])
    seed, th = params.verify.seed, params.verify.thresholds
    train = data.indices("train")
    ref = data.indices("reference")
    ref_x, ref_y = to_tensor(data.images[ref], device), data.labels[ref]
    shadows: dict[int, list] = {e: [] for e in at}
    ref_seconds = []
    for i in range(N_REFERENCE_MODELS):
        sseed = seed * 1000 + i
        in_pos, out_pos = shadow_halves(ref_y, sseed)
        scfg = shadow_config(config, sseed, len(in_pos), len(train))

        def measure_ref(learner, epoch, clock, i=i, sseed=sseed, in_pos=in_pos, out_pos=out_pos):
            shadows[epoch].append(shadow_outputs(learner, ref_x, ref_y, in_pos, out_pos, sets.x, sets.num_classes,
                                                 i, sseed, encoder_views=VIEWS, view_seed=seed))

        ref_seconds.append(train_with_checkpoints(scfg, ref_x[torch.from_numpy(in_pos)],
                                                  torch.from_numpy(ref_y[in_pos]), at, measure_ref,
                                                  f"{cfg['name']} reference {i}")[0])
    rows = []
    models = {"original": train}
    if retrain:
        models["retrain"] = np.setdiff1d(train, data.positions_of(forget))
    for model, positions in models.items():
        def measure(learner, epoch, clock, model=model):
            outputs = collect_outputs(learner, sets, encoder_views=VIEWS, seed=seed)
            reference = shadow_reference(shadows[epoch], sets.y, seed=seed)
            ev = score_outputs(replace(outputs, shadow=reference), sets.y, n_bootstrap=params.verify.bootstrap,
                               seed=seed)
            row = {"config": cfg["name"], **{k: cfg[k] for k in ("family", "members", "augment", "width")},
                   "epoch": epoch, "model": model, "n_forget": len(forget), "n_test": int(len(sets.y["test"])),
                   "reference_models": N_REFERENCE_MODELS, "views": VIEWS,
                   "seconds_to_epoch": clock.train_seconds(),
                   "reference_seconds_to_epoch": float(np.sum(ref_seconds)) * epoch / cfg["epochs"],
                   "device": f"CPU ({torch.get_num_threads()} threads)", "TA": ev["TA"], "RA": ev["RA"],
                   "UA": ev["UA"], "caught": bool(cert_lib.attack_violations(ev, th)),
                   "auc_tolerance": th.auc_tolerance,
                   "attacks": {name: {"forget": _brief(ev["attacks"][name]),
                                      "train": _brief(ev["train_vs_test"][name])} for name in ev["attacks"]}}
            rows.append(row)
            if records is not None:
                with open(records, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(row) + "\n")
            best = max(row["attacks"], key=lambda a: row["attacks"][a]["forget"]["auc_ci"][0])
            logging.info("%s %s epoch %d: strongest (forget CI low) %s: train-vs-test AUC %.3f, forget AUC %.3f; "
                         "caught %s", cfg["name"], model, epoch, best, row["attacks"][best]["train"]["auc"],
                         row["attacks"][best]["forget"]["auc"], row["caught"])

        train_with_checkpoints(config, to_tensor(data.images[positions], device),
                                          torch.from_numpy(data.labels[positions]), at, measure,
                                          f"{cfg['name']} {model}")
    return rows


def _brief(m: dict) -> dict:
    return {k: m[k] for k in ("auc", "auc_ci", "tpr_at_1pct_fpr", "tpr_at_0.1pct_fpr")}


ENCODER_ATTACKS = ("encodermi", "encodermi_classifier", "encodermi_v", "encoder_lira", "margin", "lira")


def table(rows: list[dict]) -> str:
    devices = sorted({r["device"] for r in rows})
    lines = [
        "# Encoder leakage on a CIFAR-10 subset (CPU)",
        "",
        "Generated by `benchmarks/encoder_leakage.py --from-records benchmarks/results/records/encoder_leakage.jsonl`"
        f" from the raw rows. Machine: {', '.join(devices)}, on a 2-core host shared with other jobs (seconds are "
        "wall time under that load). Backbone `resnet_compact` (4 BN blocks; width = channels of the first block), "
        "Adam 1e-3, batch 128, constant lr; augment weak = crop 0.8-1 + flip, strong = SimCLR's crop 0.2-1, flip, "
        "colour jitter, grayscale. Splits: train = members, reference = as many images (the reference encoders' "
        f"halves), test = {N_TEST}. Checkpoints of one run per config; configs not listed were not measured. Config "
        "names: family-members-augment-width-epochs.",
        "",
        "Attacks (all from the verify stage): `encodermi` = EncoderMI-T (mean pairwise cosine of 8 views); "
        "`encodermi_classifier` = logistic regression on the sorted 28-similarity vector, `encodermi_v` = "
        "EncoderMI-V, gradient boosting on the sorted vector + mean/std (both trained on retain vs test, "
        "cross-fitted by image); `encoder_lira` = offline LiRA on atanh(mean cosine) against 2 reference encoders "
        "(same recipe, halves of the reference split, same views); `margin` / `lira` = probe-confidence attacks on a "
        "linear probe fitted on retain (MUC's CMIA-style). AUC: train = retain vs test; forget = 100 random members "
        "vs test, with the bootstrap 95% CI. **caught** = the certificate's attack rule fires on the forget set "
        "(some attack's CI lower bound > 0.5 + auc_tolerance 0.05); for `retrain` rows (the forget set was not "
        "trained on) it must not. The probe attacks' train-vs-test AUC is high because the probe itself is fitted on "
        "retain: it measures the probe's overfitting; their forget-vs-test AUC is the encoder's leakage through a "
        "probe that never saw the forget set.",
        "",
        "## Per config: where the certificate's attack rule catches the original",
        "",
        *summary(rows),
        "",
        "## Every checkpoint",
        "",
        "| config | model | epoch | probe TA | " + " | ".join(f"{a} train / forget [CI]" for a in ENCODER_ATTACKS)
        + " | TPR@1% (strongest, forget) | caught | train s (+ref s) |",
        "| --- | --- | ---: | ---: | " + " | ".join("---" for _ in ENCODER_ATTACKS) + " | ---: | --- | ---: |",
    ]
    for r in sorted(rows, key=lambda r: (r["family"], r["members"], r["augment"], r["width"], r["config"],
                                         r["model"] != "original", r["epoch"])):
        cells = []
        for a in ENCODER_ATTACKS:
            m = r["attacks"].get(a)
            if m is None:
                cells.append("—")
                continue
            lo, hi = m["forget"]["auc_ci"]
            cells.append(f"{m['train']['auc']:.3f} / {m['forget']['auc']:.3f} [{lo:.2f}, {hi:.2f}]")
        best = max(r["attacks"], key=lambda a: r["attacks"][a]["forget"]["auc_ci"][0])
        tpr = r["attacks"][best]["forget"]["tpr_at_1pct_fpr"]
        lines.append(f"| {r['config']} | {r['model']} | {r['epoch']} | {r['TA']:.1f} | " + " | ".join(cells)
                     + f" | {tpr:.2f} ({best}) | {'**yes**' if r['caught'] else 'no'} | "
                     f"{r['seconds_to_epoch']:.0f} (+{r['reference_seconds_to_epoch']:.0f}) |")
    return "\n".join(lines) + "\n"


def summary(rows: list[dict]) -> list[str]:
    """One line per config: the first checkpoint whose original is caught, by which attack, and the retrain there."""
    out = []
    for name in sorted({r["config"] for r in rows}):
        rs = sorted((r for r in rows if r["config"] == name), key=lambda r: r["epoch"])
        orig = [r for r in rs if r["model"] == "original"]
        caught = [r for r in orig if r["caught"]]
        if not caught:
            last = orig[-1] if orig else None
            out.append(f"- `{name}`: original not caught at any measured epoch"
                       + (f" (up to {last['epoch']})" if last else "") + ".")
            continue
        r = caught[0]
        best = max(r["attacks"], key=lambda a: r["attacks"][a]["forget"]["auc_ci"][0])
        m = r["attacks"][best]
        retrain = [x for x in rs if x["model"] == "retrain" and x["epoch"] == r["epoch"]]
        verdict = ("retrain at that epoch not caught (positive control passes)" if retrain and not retrain[0]["caught"]
                   else "retrain at that epoch **caught**" if retrain else "retrain not measured")
        out.append(f"- `{name}`: original caught from epoch {r['epoch']} ({r['seconds_to_epoch']:.0f} s of training, "
                   f"+{r['reference_seconds_to_epoch']:.0f} s for the reference encoders) by `{best}`: forget-vs-test "
                   f"AUC {m['forget']['auc']:.3f} (CI {m['forget']['auc_ci'][0]:.3f}-{m['forget']['auc_ci'][1]:.3f}), "
                   f"train-vs-test {m['train']['auc']:.3f}; {verdict}.")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", nargs="+", default=["simclr-500-weak-16"])
    p.add_argument("--records", default=str(RECORDS), help="append raw rows to this JSONL file ('' = none)")
    p.add_argument("--from-records", nargs="+", default=None, help="only rebuild the table from these files")
    p.add_argument("--retrain", action="store_true", help="also train and score the retrain reference")
    p.add_argument("--threads", type=int, default=1)
    ns = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if not ns.from_records:
        require_cifar()
        torch.set_num_threads(ns.threads)
        for name in ns.configs:
            run_config(parse_config(name), Path(ns.records) if ns.records else None, ns.retrain)
    paths = ns.from_records or ([ns.records] if ns.records else [])
    rows = read_records(paths)
    write_text(OUT, table(rows))
    print(OUT.read_text())


if __name__ == "__main__":
    main()
