"""From a search to a model you can trust and ship: cross-validation,
held-out evaluation and refit (scikit-learn does the maths)."""

from __future__ import annotations

from ktplus.evaluation._cv import parse_cv
from ktplus.evaluation._evaluate import evaluate_trials
from ktplus.evaluation._heldout import evaluate_model, format_evaluation, load_evaluation
from ktplus.evaluation._refit import refit_best

__all__ = [
    "evaluate_model",
    "evaluate_trials",
    "format_evaluation",
    "load_evaluation",
    "parse_cv",
    "refit_best",
]
