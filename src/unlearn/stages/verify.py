"""Stage ``verify``: measure original, retrain and every unlearned model with the attack suite; write one
certificate per model, the method table, plots; register every model in MLflow with its lineage tags and move
the ``production`` alias only to a model whose certificate passed.

With a stale retrain reference (``requests.retrain_every``; ``data/forget/reference.json``) every model is also
scored on the two parts of the forget set (:mod:`unlearn.stages.verify_reference`), and the stale reference's
registered version keeps the tags of the run that trained it (its forget set is the one it excluded).

Registered evidence is immutable. A model is registered once per weight sha256, with all its tags in the same
call that creates the version; a later run that verifies the same weights again does not touch the version's own
tags, it adds a separately addressable evaluation ``unlearn.eval.<UTC timestamp>.*`` (certificate sha256,
verdict, run id). ``production`` moves only to a version whose own certificate passed and whose certificate of
this run passed too; the version then gets ``unlearn.promoted.<UTC timestamp>`` = the sha256 of the certificate
it was promoted with. A registration interrupted before the fix (an untagged version) is deleted at the start of
the next registration (:func:`unlearn.tracking.reconcile_versions`). A model with non-finite weights or outputs
is an error naming it."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import torch

from unlearn import certificate as cert_lib
from unlearn import determinism
from unlearn.config import Params
from unlearn.data.manifest import load_prepared
from unlearn.forget import load_forget_record
from unlearn.io import read_json, sha256_file, write_json, write_text
from unlearn.learners import load_learner
from unlearn.models.checkpoint import check_architecture
from unlearn.pretraining import learner_config
from unlearn.report import render_table, summary_row
from unlearn.stages import common
from unlearn.stages import verify_reference as vref
from unlearn.stages.verify_plots import write_plots
from unlearn.tracking import (add_evaluation, evaluation_id, find_version_by_tag, git_commit, reconcile_versions,
                              set_alias, set_version_tags, stage_run, version_tags)
from unlearn.training import resolve_device
from unlearn.verification import build_evaluation_sets, collect_outputs, score_outputs, train_shadow_reference

logger = logging.getLogger("unlearn.stages.verify")


def load_finite(paths: dict[str, Path], device) -> dict:
    """Load every model; a non-finite weight (NaN or inf) is a ``ValueError`` naming the model, its file and the
    first tensor that holds one."""
    learners = {}
    for name, path in paths.items():
        learners[name], _ = load_learner(path, device)
        for key, tensor in learners[name].state_dict().items():
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                bad = int((~torch.isfinite(tensor)).sum())
                raise ValueError(f"model {name!r} ({path}) has {bad} non-finite value(s) (NaN/inf) in {key}: it "
                                 "cannot be verified; re-run the stage that wrote it")
    return learners


def measure(paths: dict[str, Path], sets, params: Params, device, shadow=None,
            learners: dict | None = None) -> tuple[dict, dict, dict]:
    """Evidence, raw outputs and loaded learners per model name (``shadow``: the run's shadow models;
    ``learners``: already loaded, else loaded here). Non-finite outputs are a ``ValueError`` naming the model."""
    evidence, outputs = {}, {}
    learners = dict(learners) if learners else load_finite(paths, device)
    for name, path in paths.items():
        outputs[name] = collect_outputs(learners[name], sets, encoder_views=params.verify.encoder_views,
                                        seed=params.verify.seed, shadow=shadow)
        for set_name, logits in outputs[name].logits.items():
            if not np.isfinite(logits).all():
                raise ValueError(f"model {name!r} ({path}) gives non-finite outputs (NaN/inf) on the {set_name} set:"
                                 " it cannot be verified")
        evidence[name] = score_outputs(outputs[name], sets.y, n_bootstrap=params.verify.bootstrap,
                                       seed=params.verify.seed)
        logger.info("%-9s UA %.1f RA %.1f TA %.1f MIA-eff %.3f AUC %.3f (%s)", name, evidence[name]["UA"],
                    evidence[name]["RA"], evidence[name]["TA"], evidence[name]["mia_efficacy"],
                    evidence[name]["attack_auc"], evidence[name]["strongest_attack"])
    return evidence, outputs, learners


def main(ns: argparse.Namespace, params: Params) -> None:
    determinism.configure(params.verify.seed)  # thread count, deterministic algorithms, seeds: before any compute
    th, device = params.verify.thresholds, resolve_device(params.device)
    env = determinism.environment(device)
    data = load_prepared(ns.data)
    record = load_forget_record(ns.forget, data.fingerprint)
    sets = build_evaluation_sets(data, record["sample_ids"], device)
    methods = params.unlearn.methods
    paths = {"original": Path(ns.original), **{m: Path(ns.models) / f"{m}.pt" for m in methods}}
    shas = {name: sha256_file(p) for name, p in paths.items()}
    reports = {"original": read_json(ns.pretrain_metrics),
               **{m: read_json(Path(ns.unlearn_metrics) / f"{m}.json") for m in methods}}
    seconds = {name: report["seconds"] for name, report in reports.items()}
    # shadows depend only on the original's recipe and the reference split: trained once, reused for every model
    learners = load_finite(paths, device)  # a NaN model is named before anything is trained or measured
    expected = learner_config(params.pretrain, data.images.shape[-1], len(data.classes))
    for name, learner in learners.items():  # a model of another architecture than params.pretrain: one error
        check_architecture(paths[name], learner.config(), expected)
    shadow = train_shadow_reference(learners["original"].config(), data, sets,
                                    n_shadow=params.verify.shadow_models, seed=params.verify.seed,
                                    encoder_views=params.verify.encoder_views)
    evidence, outputs, learners = measure(paths, sets, params, device, shadow, learners)
    forget_info = {"sha256": record["sha256"], "n": record["n"], "kind": record["kind"],
                   "request_ids": sorted({w.split(" ", 1)[1] for w in record["why"].values()
                                          if w.startswith("request ")})}
    artifact = {name: {"path": str(p), "sha256": shas[name]} for name, p in paths.items()}
    reference, excluded_ids = vref.load_reference(ns.reference, record, forget_info, artifact["retrain"])
    logger.info("%s", vref.describe(reference))
    by_part = None if excluded_ids is None else vref.part_evidence(
        outputs, sets.y, vref.part_masks(data, record["sample_ids"], excluded_ids),
        n_bootstrap=params.verify.bootstrap, seed=params.verify.seed)
    controls = cert_lib.control_results(evidence["original"], evidence["retrain"], th,
                                        vref.parts_for("original", by_part))
    base = _base_info(ns)  # the model unlearning started from: the original, or production (sequential requests)
    start = artifact["original"] if base["from"] == "original" else {"path": base["path"], "sha256": base["sha256"]}
    certs = {}
    for m in methods:
        certs[m] = cert_lib.build_certificate(
            method=m, method_params=getattr(params.unlearn, m).model_dump(), model=artifact[m],
            parent=artifact["original"] if m == "retrain" else start, retrain_ref=artifact["retrain"],
            dataset_fingerprint=data.fingerprint,
            forget=forget_info, thresholds=th, seconds=seconds[m], git_commit=git_commit(),
            metrics={"unlearned": evidence[m], "original": evidence["original"], "retrain": evidence["retrain"]},
            reference=reference, parts=vref.parts_for(m, by_part),
            environment=determinism.certificate_environment(
                env, {"pretrain": reports["original"].get("environment"), "unlearn": reports[m].get("environment")}))
        write_json(Path(ns.certificates) / f"{m}.json", certs[m])
    verdicts = {"original": controls["negative"]["verdict"], **{m: certs[m]["verdict"] for m in methods}}
    rows = [summary_row(n, "original" if n == "original" else n, evidence[n], seconds[n],
                        "caught (control)" if verdicts[n] == "fail" and n == "original" else verdicts[n])
            for n in paths]
    plots = write_plots(Path(ns.plots), outputs, sets.y)
    versions = register_all(params, learners, sets, artifact, certs, data.fingerprint, record, verdicts, plots,
                            evidence, ns, reference)
    for row in rows:
        row["version"] = versions[row["model"]]
    write_json(ns.metrics, {r["model"]: {k: r[k] for k in ("UA", "RA", "TA", "mia_efficacy", "attack_auc",
                                                           "seconds")} for r in rows})
    write_json(ns.summary, {"rows": rows, "controls": controls, "dataset_fingerprint": data.fingerprint,
                            "forget_sha256": record["sha256"], "registered_model": params.registered_model_name,
                            "reference": certs["retrain"]["reference"]})
    table = render_table(rows, f"{params.prepare.source} / {params.pretrain.method} / forget {record['kind']}"
                               f" ({record['n']} samples)\n{vref.describe(reference)}")
    write_text(Path(ns.summary).with_suffix(".txt"), table)
    logger.info("\n%s", table)
    if controls["negative"]["verdict"] == "pass" and params.verify.require_power:
        raise ValueError("NEGATIVE CONTROL PASSED: the original model is indistinguishable from non-members on this "
                         "forget set, so no certificate can be trusted (all are 'inconclusive'). Use a forget set "
                         "with measurable leakage, or set verify.require_power: false to record this run anyway.")


def register_all(params, learners, sets, artifact, certs, fingerprint, record, verdicts, plots, evidence, ns,
                 reference):
    """Register each model once (matched by weight sha256) with its lineage tags; move 'production' on pass.

    A new model becomes a version created with all its tags at once. A model registered already keeps its own
    tags (immutable evidence); this run's evaluation of it is added as ``unlearn.eval.<id>.*`` tags. A stale
    reference is registered already, by the run that trained it: its version keeps that run's tags and gets no
    evaluation. ``production`` moves to the first method of ``verify.promote`` whose certificate passed now and
    whose version's own certificate passed."""
    name = params.registered_model_name
    example = sets.x["test"][:1].cpu().numpy()
    versions: dict[str, str] = {}
    own_verdict: dict[str, str] = {}
    with stage_run("verify", params.experiment_name) as tracker:
        for line in reconcile_versions(name):
            logger.warning("registry reconciliation: %s %s", name, line)
        tracker.log_params({"verify": params.verify.model_dump(), "methods": params.unlearn.methods})
        for model_name, ev in evidence.items():
            tracker.log_metrics(ev, prefix=f"{model_name}.")
        tracker.log_dataset("evaluation", ns.data, fingerprint, context="evaluation")
        for path in [*Path(ns.certificates).glob("*.json"), *plots]:
            tracker.log_artifact(path, "certificates" if path.suffix == ".json" else "plots")
        eval_id = evaluation_id()
        for model_name in ["original", *params.unlearn.methods]:
            sha = artifact[model_name]["sha256"]
            version = find_version_by_tag(name, "unlearn.model_sha256", sha)
            stale = model_name == "retrain" and reference["status"] == "stale"
            if stale and version is not None:
                versions[model_name] = version
                own_verdict[model_name] = version_tags(name, version).get("unlearn.verdict", "")
                continue
            tags = {"unlearn.role": "original" if model_name == "original" else
                    ("retrain_reference" if model_name == "retrain" else "unlearned"),
                    "unlearn.method": "pretrain" if model_name == "original" else model_name,
                    "unlearn.model_sha256": sha, "unlearn.dataset_fingerprint": fingerprint,
                    "unlearn.git_commit": git_commit() or "unknown", "unlearn.verdict": verdicts[model_name]}
            if model_name != "original":
                parent = None if model_name == "retrain" else _base_info(ns).get("version")
                rids = reference["excluded_request_ids"] if stale else certs[model_name]["forget"]["request_ids"]
                forget_sha = reference["excluded_forget_sha256"] if stale else record["sha256"]
                tags.update({"unlearn.parent_version": parent or versions["original"],
                             "unlearn.forget_sha256": forget_sha,
                             "unlearn.certificate_sha256": sha256_file(Path(ns.certificates) / f"{model_name}.json"),
                             "unlearn.request_ids": ",".join(rids)[:4000] or "none", **vref.reference_tags(reference)})
            if version is None:
                learner = learners[model_name].cpu().eval()
                version = tracker.register_model(learner, name, example, artifact_name=model_name, tags=tags)
                own_verdict[model_name] = verdicts[model_name]
            else:  # registered evidence is immutable: this run's evaluation goes beside it, under its own key
                own_verdict[model_name] = version_tags(name, version).get("unlearn.verdict", "")
                fields = {"verdict": verdicts[model_name], "run_id": tracker.run_id,
                          "git_commit": tags["unlearn.git_commit"]}
                for key in ("certificate_sha256", "forget_sha256", "reference_sha256"):
                    if f"unlearn.{key}" in tags:
                        fields[key] = tags[f"unlearn.{key}"]
                prefix = add_evaluation(name, version, fields, eval_id)
                logger.info("%s v%s (%s) is registered already: this evaluation (%s) recorded as %s.*", name,
                            version, model_name, verdicts[model_name], prefix)
            versions[model_name] = version
        passing = [m for m in params.verify.promote if m in certs and certs[m]["verdict"] == "pass"
                   and own_verdict.get(m) == "pass"]
        refused = [m for m in params.verify.promote if m in certs and certs[m]["verdict"] == "pass"
                   and own_verdict.get(m) != "pass"]
        for m in refused:
            logger.warning("%s passed now, but %s v%s was registered with verdict %r: production does not move to "
                           "it", m, name, versions[m], own_verdict.get(m))
        if passing:
            winner = passing[0]
            set_alias(name, "production", versions[winner])
            # which certificate it was promoted with, under a new key each time (never overwritten)
            set_version_tags(name, versions[winner], {f"unlearn.promoted.{eval_id}": sha256_file(
                Path(ns.certificates) / f"{winner}.json")})
            logger.info("alias production -> %s v%s (%s passed)", name, versions[winner], winner)
        else:
            logger.info("no certificate passed: alias production unchanged")
    return versions


def _base_info(ns) -> dict:
    """``reports/base.json`` from the base stage (``{"from": "original" | "production", "version", ...}``)."""
    return read_json(ns.base_info) if ns.base_info else {"from": "original", "version": None}


if __name__ == "__main__":
    args = common.parser(__doc__)
    args.add_argument("--data", default="data/prepared")
    args.add_argument("--forget", default="data/forget/forget.json")
    args.add_argument("--original", default="models/original.pt")
    args.add_argument("--models", default="models/unlearned")
    args.add_argument("--pretrain-metrics", default="reports/pretrain.json")
    args.add_argument("--unlearn-metrics", default="reports/unlearn")
    args.add_argument("--certificates", default="reports/certificates")
    args.add_argument("--plots", default="reports/plots")
    args.add_argument("--metrics", default="reports/metrics.json")
    args.add_argument("--summary", default="reports/summary.json")
    args.add_argument("--base-info", default=None, help="reports/base.json of the base stage")
    args.add_argument("--reference", default=None, help="data/forget/reference.json of the forget stage")
    common.run(main, args)
