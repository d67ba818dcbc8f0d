"""ktplus hypermodels: dense, conv, residual and auto search spaces."""

from ktplus._quiet import import_quietly

import_quietly()

from ktplus.hypermodels._auto import AutoHyperModel, families_for_shape  # noqa: E402
from ktplus.hypermodels._base import BaseHyperModel  # noqa: E402
from ktplus.hypermodels._check import check_hypermodel  # noqa: E402
from ktplus.hypermodels._conv import ConvHyperModel  # noqa: E402
from ktplus.hypermodels._dense import DenseHyperModel  # noqa: E402
from ktplus.hypermodels._residual import ResidualHyperModel  # noqa: E402

__all__ = [
    "AutoHyperModel",
    "BaseHyperModel",
    "ConvHyperModel",
    "DenseHyperModel",
    "ResidualHyperModel",
    "check_hypermodel",
    "families_for_shape",
]
