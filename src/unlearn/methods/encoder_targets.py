"""The encoder form of the gradient-penalty method's descending term (``gp: match: outputs``).

For a classifier, ``match: outputs`` trains each forget sample towards the original's class distribution on a
same-class reference non-member: "the model's outputs for forgotten data align with those of a third-party
dataset" (the seed paper's journal version). An encoder has no class outputs; what membership attacks read from it
is the **alignment** of a sample's augmented views (EncoderMI and the calibrated encoder LiRA): members' views are
mapped closer together than non-members'. The encoder term trains each forget sample's alignment towards what the
*original* encoder gives a non-member (docs/method.md, "The encoder term"):

    a_θ(x) = 2 / (V(V−1)) Σ_{i<j} cos(g_θ(t_i x), g_θ(t_j x))      mean pairwise cosine of V augmented views,
                                                                    g = backbone features, eval mode
    L_enc(θ) = mean_{x_f ∈ B_f} ( (a_θ(x_f) − τ(x_f)) / σ_n )²

with targets τ fixed before unlearning, from the original encoder θ₀ (no gradient), σ_n = std of a_θ₀ over the
reference non-members (so the term is in units of the spread an attacker sees), and two ways to pick τ(x_f):

- ``"pair"``: τ(x_f) = a_θ₀(x_n), x_n a reference non-member of the same class drawn at random once per forget
  sample (as ``match: outputs`` pairs classifiers). The forget set's alignments are pulled to a sample of the
  non-members' distribution.
- ``"rank"``: τ(x_f) = Q_n(F_m(a_θ₀(x_f))), F_m the empirical CDF of the original's alignment on retain members
  and Q_n the quantile function of its alignment on reference non-members: each forget sample keeps its rank
  (an easy-to-align image stays easy) and moves to the non-member alignment of that rank (quantile mapping, what
  the retrained model would give a sample of that difficulty if members and non-members differ by a shift of
  the distribution).

After unlearning, :func:`finalize_momentum_encoders` makes the momentum networks consistent with the unlearned
encoder: MoCo's key encoder is set to the query encoder and its queue refilled with keys of retain images (the
original's queue holds keys of forgotten images); BYOL's target network is set to the online network.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from unlearn.learners.base import Learner
from unlearn.methods.base import UnlearningData
from unlearn.models.momentum import update_momentum

TARGET_VIEWS = 8  # views per image for the targets (as the verify stage's EncoderMI)
TERM_VIEWS = 4  # views per forget image in each step (6 pairs)
MODES = ("pair", "rank")


def _require_encoder(learner: Learner, what: str) -> None:
    if learner.family != "encoder":
        raise ValueError(f"gp: {what} is the encoder form of match 'outputs'; {learner.name} is a "
                         f"{learner.family} model (classifiers use the class-output targets)")


def view_alignment(learner: Learner, views: list[Tensor]) -> Tensor:
    """a_θ(x): mean pairwise cosine similarity of the backbone features of V >= 2 views of each image.

    Differentiable in the weights; the caller chooses train/eval mode. Shape: V x (B, C, H, W) -> (B,).
    """
    if len(views) < 2:
        raise ValueError(f"view_alignment needs >= 2 views, got {len(views)}")
    feats = [F.normalize(learner.features(v), dim=1) for v in views]
    sims = [(feats[i] * feats[j]).sum(dim=1) for i in range(len(feats)) for j in range(i + 1, len(feats))]
    return torch.stack(sims, dim=1).mean(dim=1)


@torch.no_grad()
def alignment_scores(learner: Learner, x: Tensor, n_views: int = TARGET_VIEWS, batch_size: int = 256) -> Tensor:
    """a_θ(x) of every image in eval mode, without gradients. Shape: (N, C, H, W) -> (N,)."""
    was_training = learner.training
    learner.eval()
    out = torch.cat([view_alignment(learner, [learner.augment(x[i:i + batch_size]) for _ in range(n_views)])
                     for i in range(0, len(x), batch_size)])
    learner.train(was_training)
    return out


def pair_with_nonmembers(forget_y: Tensor, reference_y: Tensor, generator: torch.Generator) -> Tensor:
    """For each forget sample, the index of a random reference sample of the same class (drawn once).

    Shape: (n_f,), (n_r,) -> (n_f,) int64 indices into the reference set.
    """
    pair = torch.empty(len(forget_y), dtype=torch.long)
    for c in forget_y.unique().tolist():
        forget_idx = (forget_y == c).nonzero().flatten().cpu()
        pool = (reference_y == c).nonzero().flatten().cpu()
        if len(pool) == 0:
            raise ValueError(f"gp: the encoder term pairs each forget sample with a reference non-member of its "
                             f"class; the reference set has none of class {c}")
        pair[forget_idx] = pool[torch.randint(len(pool), (len(forget_idx),), generator=generator)]
    return pair


def rank_mapped_targets(forget_scores: Tensor, member_scores: Tensor, nonmember_scores: Tensor) -> Tensor:
    """τ = Q_n(F_m(a)): each forget score's mid-rank quantile among members, mapped to that quantile of the
    non-members. Shape: (n_f,), (n_m,), (n_n,) -> (n_f,)."""
    members = member_scores.sort().values
    below = torch.searchsorted(members, forget_scores, right=False).double()
    at_or_below = torch.searchsorted(members, forget_scores, right=True).double()
    level = ((below + at_or_below) / 2 + 0.5) / (len(members) + 1)  # in (0, 1)
    return torch.quantile(nonmember_scores.double(), level.clamp(0.0, 1.0)).to(forget_scores.dtype)


def encoder_alignment_targets(original: Learner, data: UnlearningData, generator: torch.Generator, *,
                              mode: str = "pair", n_views: int = TARGET_VIEWS,
                              max_members: int = 2000) -> tuple[Tensor, float]:
    """Targets τ(x_f) and the scale σ_n of :data:`L_enc <unlearn.methods.encoder_targets>` from the original.

    Args:
        original: The encoder before unlearning (not modified; eval mode while scoring).
        data: Forget, retain and reference (non-member) sets.
        generator: Draws the non-member pairs and the member subsample.
        mode: ``"pair"`` or ``"rank"`` (module docstring).
        n_views: Views per image for a_θ₀.
        max_members: Retain images scored for F_m (``"rank"``), a random subset when there are more.

    Returns:
        τ, Shape: (n_f,), and σ_n > 0 (a float).
    """
    _require_encoder(original, "the alignment term")
    if mode not in MODES:
        raise ValueError(f"gp: encoder target mode must be one of {MODES}, got {mode!r}")
    if len(data.reference_x) < 2:
        raise ValueError(f"gp: the encoder term needs reference non-members (>= 2), got {len(data.reference_x)}")
    if len(data.forget_x) == 0:
        raise ValueError("gp: the forget set is empty; nothing to unlearn")
    nonmember = alignment_scores(original, data.reference_x, n_views)
    scale = float(nonmember.std())
    if not scale > 0:
        raise ValueError("gp: the original encoder gives every reference non-member the same alignment (σ_n = 0)")
    if mode == "pair":
        pair = pair_with_nonmembers(data.forget_y, data.reference_y, generator)
        return nonmember[pair.to(nonmember.device)], scale
    if len(data.retain_x) == 0:
        raise ValueError("gp: encoder target mode 'rank' needs retain members to rank the forget samples among")
    keep = torch.randperm(len(data.retain_x), generator=generator)[:max_members].to(data.retain_x.device)
    members = alignment_scores(original, data.retain_x[keep], n_views)
    return rank_mapped_targets(alignment_scores(original, data.forget_x, n_views), members, nonmember), scale


def encoder_alignment_term(learner: Learner, x: Tensor, targets: Tensor, scale: float,
                           n_views: int = TERM_VIEWS) -> Tensor:
    """L_enc on one forget batch: mean(((a_θ(x) − τ) / σ_n)²), a_θ from ``n_views`` fresh augmentations, in eval
    mode (BatchNorm running statistics, as an attacker queries the model). Shape: (B, C, H, W), (B,) -> scalar."""
    was_training = learner.training
    learner.eval()
    a = view_alignment(learner, [learner.augment(x) for _ in range(n_views)])
    learner.train(was_training)
    return ((a - targets) / scale).pow(2).mean()


@torch.no_grad()
def finalize_momentum_encoders(learner: Learner, retain_x: Tensor, generator: torch.Generator,
                               batch_size: int = 256) -> None:
    """Make the momentum networks consistent with the unlearned encoder, in place.

    MoCo v2: key backbone and projection := query backbone and projection (parameters and BatchNorm buffers), and
    the queue is refilled with the new key encoder's keys of augmented retain images (eval mode), so no key of a
    forgotten image and no key of the pre-unlearning encoder is left; the write pointer restarts at 0.
    BYOL: target backbone and projection := online backbone and projection. SimCLR: nothing to do.
    """
    _require_encoder(learner, "finalize_momentum_encoders")
    if hasattr(learner, "key_backbone"):
        if len(retain_x) == 0:
            raise ValueError("gp: refilling MoCo's queue needs retain images")
        update_momentum(learner.backbone, learner.key_backbone, 0.0)
        update_momentum(learner.projection, learner.key_projection, 0.0)
        was_training = learner.training
        learner.eval()
        size, keys = learner.queue.size, []
        while sum(len(k) for k in keys) < size:
            order = torch.randperm(len(retain_x), generator=generator).to(retain_x.device)
            for i in range(0, len(order), batch_size):
                keys.append(learner.key_projections(learner.augment(retain_x[order[i:i + batch_size]])))
        learner.queue.keys.copy_(torch.cat(keys)[:size])
        learner.queue.ptr.zero_()
        learner.train(was_training)
    if hasattr(learner, "target_backbone"):
        update_momentum(learner.backbone, learner.target_backbone, 0.0)
        update_momentum(learner.projection, learner.target_projection, 0.0)
