"""``python -m ktplus`` runs the ``ktplus`` command."""

import sys

from ktplus.cli import main

sys.exit(main())
