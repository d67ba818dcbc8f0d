"""``python -m ktplus.cli``: the ``ktplus`` command (how the worker
supervisor starts its chief and workers)."""

import sys

from ktplus.cli import main

sys.exit(main())
