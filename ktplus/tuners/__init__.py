"""ktplus tuners: keras-tuner's four tuners with ktplus's options."""

from ktplus._quiet import import_quietly

import_quietly()

from ktplus.training._atomic import install as _install_atomic_writes  # noqa: E402

_install_atomic_writes()

from ktplus.tuners._bayesian_optimization import BayesianOptimization  # noqa: E402
from ktplus.tuners._grid_search import GridSearch  # noqa: E402
from ktplus.tuners._hyperband import Hyperband  # noqa: E402
from ktplus.tuners._mixin import TunerOptionsMixin  # noqa: E402
from ktplus.tuners._random_search import RandomSearch  # noqa: E402

__all__ = ["BayesianOptimization", "GridSearch", "Hyperband", "RandomSearch", "TunerOptionsMixin"]
