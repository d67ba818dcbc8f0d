"""ktplus tuners: keras-tuner's four tuners with ktplus's options."""

from ktplus.tuners._bayesian_optimization import BayesianOptimization
from ktplus.tuners._grid_search import GridSearch
from ktplus.tuners._hyperband import Hyperband
from ktplus.tuners._mixin import TunerOptionsMixin
from ktplus.tuners._random_search import RandomSearch

__all__ = ["BayesianOptimization", "GridSearch", "Hyperband", "RandomSearch", "TunerOptionsMixin"]
