"""ktplus oracles: `OptunaOracle` (Optuna's samplers inside keras-tuner),
the mapping of keras-tuner hyperparameters to Optuna distributions, and the
queue of enqueued trials every ktplus tuner has."""

from ktplus._quiet import import_quietly

import_quietly()

from ktplus.oracles._optuna_oracle import OptunaOracle  # noqa: E402
from ktplus.oracles._queue import TrialQueue  # noqa: E402
from ktplus.oracles._samplers import SAMPLERS  # noqa: E402
from ktplus.oracles._space import distribution  # noqa: E402

__all__ = ["SAMPLERS", "OptunaOracle", "TrialQueue", "distribution"]
