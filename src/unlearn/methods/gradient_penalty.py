"""Gradient-penalty unlearning: our reconstruction of Wang & Chen, "Machine Unlearning in Contrastive
Learning" (arXiv 2405.07317). See docs/method.md for the equations and what is reconstruction.

Both stages keep the model's own objective on retain data (MEMtrain) and push the forget set to look, in
input-gradient norm and in membership signal s(x), like non-members:

- stage "paired" (Algorithm 1): targets from a non-member reference batch under the current model, with
  stop-gradient:
  ``L = MEMtrain(D_r) + λ (mean‖∇x s(x_f)‖ − sg mean‖∇x s(x_n)‖)² + μ |mean s(x_f) − sg mean s(x_n)|``.
- stage "memgp" (Algorithm 2): only member-data gradients; the targets τ_g, τ_s are measured once on the
  reference set with the original model:
  ``L = MEMtrain(D_r) + λ (mean‖∇x s(x_f)‖ − τ_g)² + μ |mean s(x_f) − τ_s|``.

Switches (all off by default, measured in benchmarks/results/gp_ablation.md): ``penalty_on="features"``
differentiates s with respect to the penultimate features instead of the pixels; ``match="confidence"`` matches
mean exp(−s) instead of mean s; ``normalize`` divides each term by its target (relative errors);
``walk="forget"`` makes an epoch walk the forget set with retain batches cycled alongside;
``compare="quantiles"`` matches each forget sample, by rank, to the non-members' quantile of that rank instead of
matching batch means (the whole distribution, which is what a per-sample membership attack sees);
``match="outputs"`` (classifiers) replaces the μ term by a descending one: cross-entropy from each forget
sample's prediction to the original's class distribution on a random same-class reference non-member.
"""

from __future__ import annotations

import copy
import dataclasses
import logging

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score
from torch import Tensor

from unlearn.config import GradientPenaltyParams
from unlearn.evaluation import predict_logits
from unlearn.learners.base import Learner
from unlearn.methods.base import UnlearningData
from unlearn.methods.encoder_targets import (encoder_alignment_targets, encoder_alignment_term,
                                             finalize_momentum_encoders)
from unlearn.mia import logit_margin
from unlearn.training import cycle_batches, fit, make_optimizer, prepare_schedule, trainable

logger = logging.getLogger(__name__)


def signal_and_input_grad_norm(learner: Learner, x: Tensor, y: Tensor, create_graph: bool = True,
                               wrt: str = "input") -> tuple[Tensor, Tensor]:
    """Per-sample membership signal s(x) and ‖∇ s(x)‖₂ over all of its views.

    ``wrt="input"`` differentiates s with respect to the pixels of each view (the paper's reading);
    ``wrt="features"`` with respect to the backbone's penultimate features of each view (s then only runs the
    head, or the alignment loss for encoders, on top of them).

    Computed in eval mode (BatchNorm uses running statistics) so that samples do not interact, as when an
    attacker queries the model. With ``create_graph`` the norm is differentiable in the weights (double
    back-propagation).

    Shape:
        x (B, C, H, W), y (B,) -> s (B,), grad_norm (B,).
    """
    if wrt not in ("input", "features"):
        raise ValueError(f"wrt must be 'input' or 'features', got {wrt!r}")
    was_training = learner.training
    learner.eval()
    views = [v.detach().requires_grad_(wrt == "input") for v in learner.signal_views(x)]
    if wrt == "input":
        leaves = views
        s = learner.signal(views, y)
    else:
        leaves = [learner.features(v) for v in views]
        s = learner.signal_from_features(leaves, y)
    grads = torch.autograd.grad(s.sum(), leaves, create_graph=create_graph)
    sq = sum(g.flatten(1).pow(2).sum(dim=1) for g in grads)
    learner.train(was_training)
    return s, torch.sqrt(sq + 1e-12)


def matched_statistic(s: Tensor, match: str) -> Tensor:
    """What the μ term matches per sample: the signal itself (``loss``) or ``exp(-s)`` (``confidence``: the
    true-class probability of a classifier, bounded in (0, 1]). Shape: (B,) -> (B,)."""
    return s if match == "loss" else torch.exp(-s)


def nonmember_values(learner: Learner, x: Tensor, y: Tensor, batch_size: int = 256, wrt: str = "input",
                     match: str = "loss") -> tuple[Tensor, Tensor]:
    """Per-sample gradient norms and matched statistics of reference non-members, each sorted ascending, no
    weight gradients. Shape: x (N, C, H, W), y (N,) -> (N,), (N,)."""
    gs, ts = [], []
    for i in range(0, len(x), batch_size):
        s, g = signal_and_input_grad_norm(learner, x[i:i + batch_size], y[i:i + batch_size], create_graph=False,
                                          wrt=wrt)
        gs.append(g.detach())
        ts.append(matched_statistic(s, match).detach())
    return torch.cat(gs).sort().values, torch.cat(ts).sort().values


def rank_targets(reference_sorted: Tensor, n: int) -> Tensor:
    """The reference's (i + 0.5)/n quantiles, i = 0..n-1: the target of the i-th smallest of n forget values.
    Shape: (N,) sorted -> (n,)."""
    levels = (torch.arange(n, device=reference_sorted.device, dtype=reference_sorted.dtype) + 0.5) / n
    return torch.quantile(reference_sorted, levels)


def matching_terms(g_f: Tensor, t_f: Tensor, ref_g: Tensor, ref_t: Tensor, compare: str,
                   normalize: bool) -> tuple[Tensor, Tensor]:
    """The λ term (gradient norms, squared error) and the μ term (matched statistic, absolute error) of a forget
    batch against sorted non-member values (no gradient through them).

    ``compare="mean"``: (mean g_f − mean ref_g)², |mean t_f − mean ref_t|. ``compare="quantiles"``: each forget
    value by rank against the reference quantile of that rank, averaged: a 1-D optimal-transport distance that
    is zero only when the two distributions match, not just their means. ``normalize`` divides each term by
    its target's scale. Shape: g_f, t_f (B,); ref_g, ref_t (N,) sorted -> two scalars.
    """
    if compare == "mean":
        diff_g, diff_t = g_f.mean() - ref_g.mean(), t_f.mean() - ref_t.mean()
    elif compare == "quantiles":
        diff_g = g_f.sort().values - rank_targets(ref_g, len(g_f))
        diff_t = t_f.sort().values - rank_targets(ref_t, len(t_f))
    else:
        raise ValueError(f"compare must be 'mean' or 'quantiles', got {compare!r}")
    penalty, matching = diff_g.pow(2).mean(), diff_t.abs().mean()
    if normalize:  # relative errors: the terms no longer scale with the model's gradient/loss level
        penalty = penalty / (ref_g.mean() ** 2 + 1e-12)
        matching = matching / (ref_t.mean().abs() + 1e-12)
    return penalty, matching


def forgotten_classes(data: UnlearningData) -> list[int]:
    """Classes with forget samples and no retain sample left: no retrained model can predict them."""
    retained = set(data.retain_y.unique().tolist())
    return sorted(c for c in data.forget_y.unique().tolist() if c not in retained)


def retained_class_distribution(logits: Tensor, forgotten: list[int], temperature: float = 1.0) -> Tensor:
    """softmax(z / T) renormalised over the retained classes: log-softmax over the retained logits only, so the
    forgotten classes get exactly zero mass. Shape: (N, K) -> (N, K) rows summing to 1."""
    if len(forgotten) >= logits.shape[1]:
        raise ValueError("gp: every class is forgotten; there is no retained class to move the forget set to")
    masked = (logits / temperature).clone()
    masked[:, forgotten] = float("-inf")
    return torch.softmax(masked, dim=1)


CLASSWISE_TARGETS = ("nonmember", "own", "nearest")


def nonmember_output_targets(original: Learner, data: UnlearningData, generator: torch.Generator,
                             batch_size: int = 512, classwise: str = "nonmember",
                             temperature: float = 1.0, pairs: Tensor | None = None) -> Tensor:
    """Per forget sample, the class distribution a retrained model would give it (what ``match: outputs``
    descends towards), from the original classifier in eval mode:

    - its class is still retained: the original's output on a random reference non-member of the same class
      (what the model outputs for such an image it never saw);
    - its class is entirely forgotten (no retain sample left, so no same-class target can exist in a retrained
      model, which spreads such images over the retained classes): the original's output renormalised over the
      retained classes, softmax(z_retained / T), taken on
      ``classwise="nonmember"``: a random reference non-member of the same (forgotten) class: an unseen image of
      the class, so the target carries no trace of the sample's own memorisation;
      ``classwise="own"``: the forget sample itself;
      ``classwise="nearest"``: a random reference non-member of the sample's nearest retained class (the argmax of
      its own renormalised distribution).

    ``pairs`` (n_f,) int64, if given, receives the reference index each forget sample was paired with (−1 where
    none: classwise ``own``).

    Shape: forget (n_f, C, H, W), reference (n_r, C, H, W) -> (n_f, K) rows summing to 1.
    """
    if original.family != "supervised":
        raise ValueError(f"gp: match 'outputs' needs a classifier's class outputs; {original.name} is an encoder "
                         "(use match 'loss' or 'confidence')")
    if classwise not in CLASSWISE_TARGETS:
        raise ValueError(f"gp: classwise_target must be one of {', '.join(CLASSWISE_TARGETS)}, got {classwise!r}")
    was_training = original.training
    logits = predict_logits(original, data.reference_x, batch_size)  # eval mode; float32 values held as float64
    forgotten = forgotten_classes(data)
    forget_logits = predict_logits(original, data.forget_x, batch_size) if forgotten else None
    original.train(was_training)
    device = data.forget_x.device
    ref_logits = torch.from_numpy(logits).float()
    probs = torch.softmax(ref_logits, dim=1)
    targets = torch.empty(len(data.forget_y), probs.shape[1])
    forget_y = data.forget_y.cpu()
    reference_y = data.reference_y.cpu()

    def draw(c: int, n: int, why: str) -> Tensor:
        pool = (reference_y == c).nonzero().flatten()
        if len(pool) == 0:
            raise ValueError(f"gp: match 'outputs' needs reference non-members of {why}; the reference set has "
                             f"none of class {c}")
        return pool[torch.randint(len(pool), (n,), generator=generator)]

    if pairs is not None:
        pairs.fill_(-1)
    for c in forget_y.unique().tolist():
        idx = (forget_y == c).nonzero().flatten()
        if c not in forgotten or classwise == "nonmember":
            why = ("every partly forgotten class" if c not in forgotten
                   else "every forgotten class (classwise_target nonmember)")
            pair = draw(c, len(idx), why)
            targets[idx] = (probs[pair] if c not in forgotten
                            else retained_class_distribution(ref_logits[pair], forgotten, temperature))
            if pairs is not None:
                pairs[idx] = pair
            continue
        own = retained_class_distribution(torch.from_numpy(forget_logits[idx.numpy()]).float(), forgotten,
                                          temperature)
        if classwise == "own":
            targets[idx] = own
            continue
        nearest = own.argmax(dim=1)
        for k in nearest.unique().tolist():
            rows = idx[nearest == k]
            pair = draw(k, len(rows), "the nearest retained class of every forgotten sample")
            targets[rows] = retained_class_distribution(ref_logits[pair], forgotten, temperature)
    return targets.to(device)


def forget_membership_auc(learner: Learner, data: UnlearningData, batch_size: int = 512) -> float:
    """The early-stopping signal: AUC of the stable logit-margin attack, forget set (members) against the
    reference non-members of the forget set's classes, under the current model (eval mode). 0.5: the forget set
    looks like non-members; the test split is never used. At most as many reference samples as forget samples
    (the first ones of those classes, the same at every check) keep the check at about the cost of two steps."""
    classes = data.forget_y.unique()
    keep = torch.isin(data.reference_y, classes).nonzero().flatten()[:len(data.forget_y)]
    m = logit_margin(predict_logits(learner, data.forget_x, batch_size), data.forget_y.cpu().numpy())
    n = logit_margin(predict_logits(learner, data.reference_x[keep], batch_size),
                     data.reference_y[keep].cpu().numpy())
    return float(roc_auc_score(np.r_[np.ones(len(m)), np.zeros(len(n))], np.r_[m, n]))


def soft_cross_entropy(logits: Tensor, target: Tensor, leave_out: Tensor | None = None) -> Tensor:
    """mean_i −Σ_k q_ik log softmax(z_i)_k; where ``leave_out`` (B, K) is True the logit is left out of that row's
    softmax (its target mass must be 0), so the term does not move it. Shape: (B, K), (B, K) -> scalar."""
    if leave_out is None:
        return F.cross_entropy(logits, target)
    logp = torch.log_softmax(logits.masked_fill(leave_out, float("-inf")), dim=1).masked_fill(leave_out, 0.0)
    return -(target * logp).sum(dim=1).mean()


def reset_head_rows(learner: Learner, classes: list[int]) -> None:
    """Re-draw the classifier head's rows of ``classes`` as at initialisation (nn.Linear's uniform ±1/√fan_in):
    a retrained model's output unit of a class it never saw was only ever trained on other classes' images."""
    head = getattr(learner, "head", None)
    if not isinstance(head, torch.nn.Linear):
        raise ValueError(f"gp: forgotten_logits 'reset' needs a linear classifier head; {learner.name} has none "
                         "(use forgotten_logits 'suppress')")
    bound = 1.0 / head.in_features ** 0.5
    with torch.no_grad():
        head.weight[classes] = torch.empty_like(head.weight[classes]).uniform_(-bound, bound)
        if head.bias is not None:
            head.bias[classes] = torch.empty_like(head.bias[classes]).uniform_(-bound, bound)


class _Converged(Exception):
    """Raised from the epoch callback to end ``fit`` early (the model is updated in place)."""


def gradient_penalty(original: Learner, data: UnlearningData, params: GradientPenaltyParams,
                     generator: torch.Generator) -> Learner:
    """Unlearn with MEMtrain + gradient penalty (stage ``params.stage``); the original is not modified."""
    if len(data.reference_x) == 0:
        raise ValueError("gp: the reference (non-member) set is empty; the gradient penalty needs it")
    if len(data.forget_x) == 0:
        raise ValueError("gp: the forget set is empty; nothing to unlearn")
    learner = copy.deepcopy(original)
    walk_forget = params.walk == "forget"
    # the set an epoch walks gets the fit loop's index batches; the other one is cycled alongside
    cycled = cycle_batches(len(data.retain_x) if walk_forget else len(data.forget_x),
                           params.batch_size if walk_forget else params.forget_batch_size, generator)
    reference_batches = cycle_batches(len(data.reference_x), params.reference_batch_size, generator)
    statistic = "loss" if params.match == "outputs" else params.match  # what the λ/μ terms compare
    encoder_term = params.match == "outputs" and original.family == "encoder"  # methods/encoder_targets.py
    pairs = torch.full((len(data.forget_y),), -1, dtype=torch.long)  # each forget sample's reference non-member
    if encoder_term:  # τ: the original's view alignment of a paired non-member (compare: quantiles -> by rank)
        outputs, enc_scale = encoder_alignment_targets(original, data, generator,
                                                       mode="rank" if params.compare == "quantiles" else "pair")
    else:
        outputs = (nonmember_output_targets(original, data, generator, classwise=params.classwise_target,
                                            temperature=params.temperature, pairs=pairs)
                   if params.match == "outputs" else None)
    needs_signal = params.match != "outputs" or params.lambda_gp > 0
    checked = data  # the early-stopping signal compares the real forget set with untouched non-members
    classifier_term = outputs is not None and not encoder_term
    if classifier_term and params.classwise_reference and forgotten_classes(data):
        # class-wise: the reference non-members of the forgotten classes descend too, towards the original's own
        # output on them renormalised over the retained classes, so that the class is suppressed on unseen images
        # of it as on the forget set (a retrained model treats both alike)
        extra = torch.isin(data.reference_y, torch.tensor(forgotten_classes(data), device=data.reference_y.device))
        own = retained_class_distribution(torch.from_numpy(predict_logits(original, data.reference_x[extra])).float(),
                                          forgotten_classes(data), params.temperature).to(outputs.device)
        data = dataclasses.replace(data, forget_x=torch.cat([data.forget_x, data.reference_x[extra]]),
                                   forget_y=torch.cat([data.forget_y, data.reference_y[extra]]))
        outputs = torch.cat([outputs, own])
        pairs = torch.cat([pairs, torch.full((int(extra.sum()),), -1, dtype=torch.long)])
    forgotten = forgotten_classes(data) if classifier_term else []
    masked = None  # (n_f, K) True where a forget sample's forgotten-class logit is left out of the descending term
    tracked = None  # (n_f,) True where a forget sample's forgotten-class mass tracks its paired non-member's
    if forgotten and params.forgotten_logits in ("reset", "track"):
        reset_head_rows(learner, forgotten)
        rows = torch.isin(data.forget_y, torch.tensor(forgotten, device=data.forget_y.device)).to(outputs.device)
        if params.forgotten_logits == "track":
            if params.classwise_target != "nonmember":
                raise ValueError("gp: forgotten_logits 'track' needs classwise_target 'nonmember' (a same-class "
                                 "reference non-member per forget sample)")
            tracked = rows & (pairs.to(rows.device) >= 0)
        else:
            cols = torch.zeros(outputs.shape[1], dtype=torch.bool, device=outputs.device)
            cols[forgotten] = True
            masked = rows[:, None] & cols[None, :]
    pairs = pairs.to(data.reference_x.device)

    def target_of(f: Tensor) -> Tensor:
        """The descending target of forget batch f. A tracked row keeps its retained-class shape and takes its
        forgotten-class mass from the current model's output on the paired same-class non-member (eval mode, no
        gradient): the level that the re-drawn head, shaped only by MEMtrain on retain, gives unseen images of
        the class at this step."""
        target = outputs[f]
        if tracked is None or not bool(tracked[f].any()):
            return target
        sel = tracked[f]
        was_training = learner.training
        learner.eval()
        with torch.no_grad():
            current = torch.softmax(learner.logits(data.reference_x[pairs[f][sel]]), dim=1)
        learner.train(was_training)
        moved = target[sel] * (1 - current[:, forgotten].sum(dim=1, keepdim=True))
        moved[:, forgotten] = current[:, forgotten]
        target = target.clone()
        target[sel] = moved
        return target
    anchor = None
    if params.anchor > 0:  # the original's outputs on reference non-members, kept while the forget set moves
        if original.family != "supervised":
            raise ValueError(f"gp: anchor needs a classifier's class outputs; {original.name} is an encoder")
        anchor = torch.softmax(torch.from_numpy(predict_logits(original, data.reference_x)).float(), dim=1).to(
            data.reference_x.device)
    if params.stage == "memgp" and needs_signal:
        ref_g, ref_t = nonmember_values(original, data.reference_x, data.reference_y, wrt=params.penalty_on,
                                        match=statistic)
        logger.info("gp memgp targets: tau_g=%.4f tau_s=%.4f", ref_g.mean().item(), ref_t.mean().item())

    def batch_loss(idx: Tensor) -> Tensor:
        r, f = (next(cycled), idx) if walk_forget else (idx, next(cycled))
        loss = learner.training_loss(data.retain_x[r], data.retain_y[r])
        if needs_signal:
            s_f, g_f = signal_and_input_grad_norm(learner, data.forget_x[f], data.forget_y[f],
                                                  wrt=params.penalty_on)
            if params.stage == "paired":
                n = next(reference_batches)
                s_n, g_n = signal_and_input_grad_norm(learner, data.reference_x[n], data.reference_y[n],
                                                      wrt=params.penalty_on)
                targets = g_n.detach().sort().values, matched_statistic(s_n, statistic).detach().sort().values
            else:
                targets = ref_g, ref_t
            penalty, matching = matching_terms(g_f, matched_statistic(s_f, statistic), *targets, params.compare,
                                               params.normalize)
            loss = loss + params.lambda_gp * penalty
        if outputs is not None and encoder_term:  # encoders: view alignment towards the non-member targets
            matching = encoder_alignment_term(learner, data.forget_x[f], outputs[f], enc_scale)
        elif outputs is not None:  # descend towards what the model outputs for a same-class non-member
            matching = soft_cross_entropy(learner.logits(data.forget_x[f]), target_of(f),
                                          None if masked is None else masked[f])
        if anchor is not None:
            n = next(reference_batches)
            loss = loss + params.anchor * F.cross_entropy(learner.logits(data.reference_x[n]), anchor[n])
        return loss + params.mu * matching

    n_walked = len(data.forget_x) if walk_forget else len(data.retain_x)
    walked_batch = params.forget_batch_size if walk_forget else params.batch_size
    prepare_schedule(learner, params.epochs, n_walked, walked_batch)
    optimizer = make_optimizer(trainable(learner), params.optimizer, params.lr)
    schedule = (torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=params.epochs)
                if params.lr_schedule == "cosine" else None)

    def on_epoch_end(epoch: int, _loss: float) -> None:
        if schedule is not None:
            schedule.step()
        if params.early_stop is not None and epoch % params.check_every == 0 and epoch < params.epochs:
            auc = forget_membership_auc(learner, checked)
            logger.info("gp epoch %d: forget-vs-reference membership AUC %.3f", epoch, auc)
            if auc <= 0.5 + params.early_stop:
                raise _Converged(epoch)

    try:
        fit(learner, batch_loss, n_walked, epochs=params.epochs, batch_size=walked_batch, optimizer=optimizer,
            generator=generator, desc=f"gp-{params.stage}", max_grad_norm=params.max_grad_norm,
            on_epoch_end=on_epoch_end)
    except _Converged as stop:
        logger.info("gp: stopped early after epoch %d of %d (forget set at the non-member level)", stop.args[0],
                    params.epochs)
    if encoder_term:  # MoCo key encoder and queue, BYOL target: made consistent with the unlearned encoder
        finalize_momentum_encoders(learner, data.retain_x, generator)
    return learner
