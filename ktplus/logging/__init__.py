"""TensorBoard logging of every trial, with no dependency on the Keras
backend: epoch scalars, HParams sessions and experiment, text, overview."""

from ktplus._quiet import import_quietly

import_quietly()

from ktplus.logging._hparams import hparam_info, write_experiment, write_session  # noqa: E402
from ktplus.logging._trial import OVERVIEW_RUN, SearchLogger, TrialLogger, trial_run_dir  # noqa: E402
from ktplus.logging._writer import RunWriter, replacing  # noqa: E402

__all__ = [
    "OVERVIEW_RUN",
    "RunWriter",
    "SearchLogger",
    "TrialLogger",
    "hparam_info",
    "replacing",
    "trial_run_dir",
    "write_experiment",
    "write_session",
]
