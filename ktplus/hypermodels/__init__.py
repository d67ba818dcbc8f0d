"""ktplus hypermodels: dense, conv, residual and auto search spaces."""

from ktplus.hypermodels._auto import AutoHyperModel, families_for_shape
from ktplus.hypermodels._base import BaseHyperModel
from ktplus.hypermodels._check import check_hypermodel
from ktplus.hypermodels._conv import ConvHyperModel
from ktplus.hypermodels._dense import DenseHyperModel
from ktplus.hypermodels._residual import ResidualHyperModel

__all__ = [
    "AutoHyperModel",
    "BaseHyperModel",
    "ConvHyperModel",
    "DenseHyperModel",
    "ResidualHyperModel",
    "check_hypermodel",
    "families_for_shape",
]
