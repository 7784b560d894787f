"""Membership-inference attacks and statistics used to verify unlearning."""

from unlearn.mia.encoder_mi import (
    fit_encodermi_classifier,
    mean_pairwise_cosine,
    pairwise_cosine_vectors,
)
from unlearn.mia.encoder_lira import alignment_logit, encoder_lira_scores
from unlearn.mia.encoder_mi_vector import cross_fitted_scores, position_folds, vector_features
from unlearn.mia.lira import lira_offline_likelihood, lira_offline_scores
from unlearn.mia.shadow import ShadowAttack, fit_shadow_attack, shadow_features, shadow_scores
from unlearn.mia.stats import (
    attack_metrics,
    balanced_accuracy_best_threshold,
    bootstrap_auc,
    hanley_mcneil_se,
    min_detectable_auc_shift,
    roc_auc,
    tpr_at_fpr,
)
from unlearn.mia.svc_efficacy import (
    confidence_features,
    fit_membership_svc,
    mia_efficacy,
)
from unlearn.mia.threshold import (
    THRESHOLD_ATTACKS,
    confidence,
    logit_margin,
    negative_entropy,
    negative_loss,
    negative_modified_entropy,
)

__all__ = [
    "alignment_logit",
    "cross_fitted_scores",
    "encoder_lira_scores",
    "position_folds",
    "vector_features",
    "ShadowAttack",
    "fit_shadow_attack",
    "lira_offline_likelihood",
    "lira_offline_scores",
    "shadow_features",
    "shadow_scores",
    "THRESHOLD_ATTACKS",
    "attack_metrics",
    "balanced_accuracy_best_threshold",
    "bootstrap_auc",
    "confidence",
    "confidence_features",
    "fit_encodermi_classifier",
    "fit_membership_svc",
    "hanley_mcneil_se",
    "logit_margin",
    "mean_pairwise_cosine",
    "mia_efficacy",
    "min_detectable_auc_shift",
    "negative_entropy",
    "negative_loss",
    "negative_modified_entropy",
    "pairwise_cosine_vectors",
    "roc_auc",
    "tpr_at_fpr",
]
