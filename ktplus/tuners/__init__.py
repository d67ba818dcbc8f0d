"""ktplus tuners: `Tuner` (any oracle) and keras-tuner's four search
algorithms, each with ktplus's options (`TunerOptions`)."""

from ktplus._quiet import import_quietly

import_quietly()

from ktplus.tuners._bayesian_optimization import BayesianOptimization  # noqa: E402
from ktplus.tuners._grid_search import GridSearch  # noqa: E402
from ktplus.tuners._hyperband import Hyperband  # noqa: E402
from ktplus.tuners._options import FAST_PARTS, TunerOptions  # noqa: E402
from ktplus.tuners._optuna_search import OptunaSearch  # noqa: E402
from ktplus.tuners._random_search import RandomSearch  # noqa: E402
from ktplus.tuners._tuner import Tuner  # noqa: E402

__all__ = ["FAST_PARTS", "BayesianOptimization", "GridSearch", "Hyperband", "OptunaSearch", "RandomSearch", "Tuner", "TunerOptions"]
