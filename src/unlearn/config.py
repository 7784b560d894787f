"""The typed schema of ``params.yaml``: built once at the edge (stages, CLI), passed down as objects.

Every section forbids unknown keys, so a typo is an error that names the key, not a silent default. Types are
strict (``epochs: true`` or ``epochs: "3"`` is not an integer), numbers must be finite (``lr: .inf`` is refused),
seeds lie in ``[0, 2**32)``, and a key given twice in the YAML is an error naming it and its line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class ParamsError(ValueError):
    """``params.yaml`` is missing, malformed or fails the schema; the message names file and key."""


SEED_LIMIT = 2**32  # seeds lie in [0, 2**32): what numpy's legacy seeding accepts


def seed_field(default: int | None = 0, description: str | None = None) -> Any:
    """A seed: an integer in ``[0, 2**32)``."""
    return Field(default, ge=0, lt=SEED_LIMIT, description=description)


class _Section(BaseModel):
    """Unknown keys are errors; types are strict (no bool or string coercion); numbers must be finite."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class SplitSizes(_Section):
    train: int = Field(900, ge=2, description="members: the model is trained on these")
    reference: int = Field(400, ge=2, description="non-members the unlearner may use")
    test: int | None = Field(None, ge=2, description="evaluation only; null = every remaining sample")


class PrepareParams(_Section):
    source: Literal["digits", "cifar10", "cifar100", "imagefolder"] = "digits"
    root: str | None = Field(None, description="dataset root (cifar) or folder/zip (imagefolder)")
    download: bool = False
    max_images: int | None = Field(None, ge=10, description="class-balanced subset before splitting")
    splits: SplitSizes = SplitSizes()
    seed: int = seed_field()

    @model_validator(mode="after")
    def _root_needed(self) -> "PrepareParams":
        if self.source == "imagefolder" and not self.root:
            raise ValueError("prepare.root is required when prepare.source is 'imagefolder'")
        return self


class BackboneParams(_Section):
    name: Literal["small_cnn", "resnet_compact", "resnet18"] = "small_cnn"
    width: int = Field(32, ge=4, le=512)
    blocks: list[int] = Field(default_factory=lambda: [1, 1, 1, 1])


class PretrainParams(_Section):
    method: Literal["supervised", "simclr", "moco", "byol"] = "supervised"
    backbone: BackboneParams = BackboneParams()
    augment: Literal["none", "digits", "cifar_weak", "cifar_simclr"] = "none"
    epochs: int = Field(60, ge=1)
    batch_size: int = Field(128, ge=2)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    optimizer: Literal["adam", "sgd"] = "adam"
    lr_schedule: Literal["constant", "cosine"] = Field(
        "constant", description="cosine: the lr decays per epoch to 0 (a converged, reproducible original)")
    temperature: float = Field(0.5, gt=0, description="NT-Xent / InfoNCE temperature")
    projection_dim: int = Field(64, ge=2)
    queue_size: int = Field(4096, ge=2, description="MoCo: number of negatives kept in the queue")
    momentum: float = Field(0.99, gt=0, lt=1, description="MoCo key encoder / BYOL target EMA (base) momentum")
    amp: bool = Field(True, description="bfloat16 mixed precision when training on CUDA (ignored on CPU)")
    monitor_every: int = Field(10, ge=1, description="epochs between kNN / linear-probe evaluations")
    checkpoint_every: int = Field(10, ge=1, description="epochs between resumable training-state checkpoints")
    seed: int = seed_field()


class ForgetParams(_Section):
    kind: Literal["random", "class", "requests"] = "class"
    fraction: float = Field(0.1, gt=0, lt=1, description="share of the train split (kind=random)")
    classes: list[int] = Field(default_factory=lambda: [3], description="forgotten labels (kind=class)")
    seed: int = seed_field()


class MethodBudget(_Section):
    epochs: int = Field(5, ge=1)
    lr: float = Field(1e-3, gt=0)
    batch_size: int = Field(64, ge=2)
    optimizer: Literal["adam", "sgd"] = "adam"


# ``unlearn.gp.preset: paper``: the literal Algorithm 2 reconstruction (docs/method.md); keys set next to the preset
# override it. The field defaults below are preset ``default``: the measured best passing configuration.
GP_PRESETS: dict[str, dict] = {
    "default": {},
    "paper": {"stage": "memgp", "epochs": 5, "lr": 0.01, "optimizer": "sgd", "batch_size": 64, "lambda_gp": 1.0,
              "mu": 0.1, "forget_batch_size": 64, "reference_batch_size": 128, "max_grad_norm": 1.0,
              "penalty_on": "input", "match": "loss", "compare": "mean", "normalize": False, "walk": "retain",
              "lr_schedule": "constant", "early_stop": None},
}


class GradientPenaltyParams(MethodBudget):
    preset: Literal["default", "paper"] = Field(
        "default", description="default: the measured best configuration (the field defaults); paper: the literal "
                               "Algorithm 2 reconstruction (GP_PRESETS); keys set next to a preset override it")
    epochs: int = Field(80, ge=1, description="passes over the walked set (the forget set by default)")
    optimizer: Literal["adam", "sgd"] = "sgd"
    lr: float = Field(0.01, gt=0)
    stage: Literal["memgp", "paired"] = "memgp"
    lambda_gp: float = Field(0.0, ge=0, description="weight of the input-gradient-norm matching term")
    mu: float = Field(1.0, ge=0, description="weight of the membership-signal matching term")
    forget_batch_size: int = Field(64, ge=2)
    reference_batch_size: int = Field(128, ge=2)
    max_grad_norm: float | None = Field(1.0, gt=0, description="clip the global gradient norm (null: off); "
                                        "double back-propagation can produce very large steps with SGD")
    penalty_on: Literal["input", "features"] = Field(
        "input", description="differentiate s(x) with respect to the input pixels (the paper's reading) or the "
                             "backbone's penultimate features (cheaper: no double back-propagation through the stem)")
    match: Literal["loss", "confidence", "outputs"] = Field(
        "outputs", description="the μ term matches mean s(x) (loss) or mean exp(-s(x)) (bounded: the true-class "
                            "probability for classifiers) to the non-member level; outputs (classifiers only): "
                            "cross-entropy from each forget sample's prediction to the original's class "
                            "distribution on a random same-class reference non-member (a descending term)")
    compare: Literal["mean", "quantiles"] = Field(
        "mean", description="how the forget batch is compared with the non-members: batch means (the paper's "
                            "reading), or per sample by rank: the i-th smallest forget value to the non-members' "
                            "(i + 0.5)/B quantile (a 1-D optimal-transport match of the whole distribution)")
    normalize: bool = Field(
        False, description="match relative errors: λ ((G_f − τ_g)/τ_g)² + μ |S_f − τ_s|/τ_s "
                            "(scale-free terms)")
    walk: Literal["retain", "forget"] = Field(
        "forget", description="what an epoch walks: the retain set (forget batches cycled alongside) or the forget "
                              "set (retain batches cycled alongside; far fewer steps)")
    classwise_target: Literal["nonmember", "own", "nearest"] = Field(
        "nonmember", description="match outputs, forget samples of a class with no retained sample left: the "
                                 "original's output renormalised over the retained classes, on a random reference "
                                 "non-member of the same class (nonmember), on the sample itself (own), or on a "
                                 "reference non-member of its nearest retained class (nearest)")
    temperature: float = Field(1.0, gt=0, description="temperature of the renormalised class-wise target")
    forgotten_logits: Literal["track", "reset", "suppress"] = Field(
        "reset", description="class-wise: reset = re-draw the head rows of the forgotten classes and leave their "
                             "logits out of the descending term (only MEMtrain on retain shapes them, as in a "
                             "retrain); track = reset, and each forget sample's forgotten-class mass follows the "
                             "current model's on its paired same-class non-member; suppress = the descending term's "
                             "zero target pushes them down on the forget samples only")
    classwise_reference: bool = Field(
        False, description="class-wise: the reference non-members of the forgotten classes also descend, towards "
                           "the original's output on them renormalised over the retained classes")
    lr_schedule: Literal["constant", "cosine"] = Field(
        "constant", description="cosine: the lr decays per epoch to 0 over ``epochs``")
    early_stop: float | None = Field(
        None, ge=0, le=0.5, description="stop once the logit-margin AUC of the forget set against reference "
                                        "non-members of the same classes is <= 0.5 + this (null: off)")
    check_every: int = Field(5, ge=1, description="epochs between early-stopping checks")
    anchor: float = Field(0.0, ge=0, description="weight of CE(p0(x_n), f(x_n)) on a batch of reference_batch_size "
                                                 "reference non-members: keeps the model's outputs on unseen data "
                                                 "where the original had them (classifiers; 0: off)")

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data):
        if isinstance(data, dict) and data.get("preset", "default") in GP_PRESETS:
            return {**GP_PRESETS[data.get("preset", "default")], **data}
        return data


class GradientAscentParams(MethodBudget):
    """GA: ``epochs`` passes over the forget set, minimising −MEMtrain(D_f)."""


class NegGradPlusParams(MethodBudget):
    alpha: float = Field(0.9999, ge=0, le=1, description="α in α·L(retain) − (1−α)·L(forget) (SCRUB authors' code)")


class RandomLabelsParams(MethodBudget):
    """RL: ``epochs`` passes over forget ∪ retain, forget samples with random wrong labels."""


class L1SparseParams(MethodBudget):
    gamma: float = Field(5e-4, ge=0, description="initial weight of ‖θ‖₁, decayed linearly per epoch: γ(1 − e/E)")


class ScrubParams(MethodBudget):
    msteps: int = Field(2, ge=0, description="max-steps (forget passes) in the first msteps epochs")
    alpha: float = Field(0.001, ge=0, description="weight of KL(teacher‖student) on retain in the min-step")
    gamma: float = Field(0.99, ge=0, description="weight of cross-entropy on retain in the min-step")
    temperature: float = Field(4.0, gt=0, description="distillation temperature T of the KL terms")


class SalUnParams(MethodBudget):
    mask_ratio: float = Field(0.5, gt=0, le=1,
                              description="share of weights marked salient (largest |∇θ L_f|); 0.5 = above the median")


class AlignmentCalibrationParams(MethodBudget):
    beta: float = Field(1.0, ge=0, description="weight of the forget-set alignment-calibration term")
    calibration: Literal["reference", "cosine"] = Field(
        "reference", description="reference: relu(τ − mean s(x_f)), τ from non-members; cosine: + mean cos of views")


MethodName = Literal["retrain", "finetune", "gp", "ga", "neggrad_plus", "rl", "l1_sparse", "scrub", "salun", "muc"]


class RetrainParams(_Section):
    epochs: int | None = Field(None, ge=1, description="null = the original model's epochs")
    seed: int | None = seed_field(None, description="null = the original's training seed (same initialisation "
                                  "and batch order as the original, minus the forgotten data); an int = another one")


class UnlearnParams(_Section):
    methods: list[MethodName] = Field(
        default_factory=lambda: ["retrain", "finetune", "gp"])
    retrain: RetrainParams = RetrainParams()
    seed: int = seed_field()
    finetune: MethodBudget = MethodBudget()
    gp: GradientPenaltyParams = GradientPenaltyParams()
    ga: GradientAscentParams = GradientAscentParams()
    neggrad_plus: NegGradPlusParams = NegGradPlusParams()
    rl: RandomLabelsParams = RandomLabelsParams()
    l1_sparse: L1SparseParams = L1SparseParams()
    scrub: ScrubParams = ScrubParams()
    salun: SalUnParams = SalUnParams()
    muc: AlignmentCalibrationParams = AlignmentCalibrationParams()

    @model_validator(mode="after")
    def _retrain_present(self) -> "UnlearnParams":
        if "retrain" not in self.methods:
            raise ValueError("unlearn.methods must include 'retrain': it is the gold reference of every certificate")
        return self


class Thresholds(_Section):
    auc_tolerance: float = Field(0.05, ge=0, le=0.5, description="|AUC - 0.5| allowed beyond the CI")
    accuracy_tolerance: float = Field(5.0, ge=0, le=100, description="|forget acc - retrain's| in points")
    mia_efficacy_tolerance: float = Field(0.1, ge=0, le=1, description="|MIA-efficacy - retrain's|")
    utility_drop: float = Field(5.0, ge=0, le=100, description="max test-accuracy loss vs original, points")
    confidence: float = Field(0.95, gt=0.5, lt=1)


class VerifyParams(_Section):
    thresholds: Thresholds = Thresholds()
    encoder_views: int = Field(8, ge=2, description="augmented views per sample for EncoderMI")
    shadow_models: int = Field(2, ge=0, description="shadow models (reference halves, the original's recipe) for "
                                                    "the shadow-model attack and offline LiRA; 0 disables both")
    bootstrap: int = Field(200, ge=10)
    require_power: bool = Field(True, description="fail the stage when the negative control passes")
    promote: list[MethodName] = Field(
        default_factory=lambda: ["gp", "finetune", "retrain"],
        description="preference order for the 'production' alias among models whose certificate passed")
    seed: int = seed_field()


class TrackingParams(_Section):
    experiment: str | None = Field(None, description="default: unlearn-<prepare.source>")
    registered_model: str | None = Field(None, description="default: <source>-<pretrain.method>")


class RequestsParams(_Section):
    """Deletion requests as an operation (``unlearn serve`` / ``unlearn ingest``, docs/operations.md)."""

    inbox: str = Field("data/requests/inbox", description="folder of incoming request files (*.json)")
    ledger: str = Field("data/ledger/ledger.sqlite", description="append-only request ledger (sqlite)")
    schedule: str = Field("*/10 * * * *", description="cron schedule of the served deletion-request deployment")
    start_from: Literal["production", "original"] = Field(
        "production", description="sequential unlearning: start each run from the production version's checkpoint "
                                  "(falls back to the original when there is none), or always from the original")
    retrain_every: int = Field(
        1, ge=1, description="refresh the retrain reference every N deletion-request runs (1 = every run); in "
                             "between, runs reuse the last reference and certificates judge the newer requests' "
                             "samples by the attack rule only (docs/operations.md)")

    @model_validator(mode="after")
    def _cron(self) -> "RequestsParams":
        fields = self.schedule.split()
        if len(fields) != 5:
            raise ValueError(f"requests.schedule: expected a 5-field cron expression, got {self.schedule!r}")
        try:
            from datetime import datetime

            from cronsim import CronSim, CronSimError
        except ImportError:  # cronsim ships with prefect; without it only the field count is checked
            return self
        try:
            CronSim(self.schedule, datetime(2000, 1, 1))
        except CronSimError as exc:
            raise ValueError(f"requests.schedule: {exc} in {self.schedule!r}") from None
        return self


class Params(_Section):
    device: Literal["auto", "cpu", "cuda"] = "auto"
    prepare: PrepareParams = PrepareParams()
    pretrain: PretrainParams = PretrainParams()
    forget: ForgetParams = ForgetParams()
    unlearn: UnlearnParams = UnlearnParams()
    verify: VerifyParams = VerifyParams()
    tracking: TrackingParams = TrackingParams()
    requests: RequestsParams = RequestsParams()

    @property
    def experiment_name(self) -> str:
        return self.tracking.experiment or f"unlearn-{self.prepare.source}"

    @property
    def registered_model_name(self) -> str:
        return self.tracking.registered_model or f"{self.prepare.source}-{self.pretrain.method}"


class _Loader(yaml.SafeLoader):
    """Safe YAML, plus YAML 1.2 floats: ``1e-3`` is a number (as DVC reads it), not the string PyYAML makes of it."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."))


def _duplicate_key(node: yaml.Node, where: str = "") -> str | None:
    """The first key given twice in one mapping of the composed document, as ``'a.b' at line N (first at line M)``;
    None when every key is unique. Walks nodes, not Python objects, so that the line is known."""
    seen_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, str]] = [(node, where)]
    while stack:
        current, prefix = stack.pop()
        if id(current) in seen_nodes:  # an alias: already checked
            continue
        seen_nodes.add(id(current))
        if isinstance(current, yaml.MappingNode):
            first: dict[str, int] = {}
            for key_node, value_node in current.value:
                key = str(key_node.value)
                dotted = f"{prefix}.{key}" if prefix else key
                line = key_node.start_mark.line + 1
                if key in first and key != "<<":
                    return f"{dotted!r} at line {line} (first at line {first[key]})"
                first.setdefault(key, line)
                stack.append((value_node, dotted))
        elif isinstance(current, yaml.SequenceNode):
            stack.extend((item, f"{prefix}.{i}") for i, item in enumerate(current.value))
    return None


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file strictly: UTF-8 only, safe tags only, no key given twice. Every error is a
    :class:`ParamsError` naming the file (and the key and line of a duplicate)."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: file not found")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParamsError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise ParamsError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        duplicate = _duplicate_key(node)
        if duplicate:
            raise ParamsError(f"{path}: duplicate key {duplicate}; give each key once")
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    except (ValueError, RecursionError) as exc:  # e.g. an integer over Python's int-digit limit
        if isinstance(exc, ParamsError):
            raise
        raise ParamsError(f"{path}: not valid YAML ({str(exc).split(';')[0]})") from None
    finally:
        loader.dispose()


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate ``params.yaml``; raise one :class:`ParamsError` naming the file and the keys."""
    path = Path(path)
    raw = read_yaml(path) or {}
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: the top level must be a mapping of sections")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise ParamsError(f"{path}: {_format_errors(exc)}") from None


def _format_errors(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "<root>"
        parts.append(f"{key}: {err['msg']}")
    return "; ".join(parts)
