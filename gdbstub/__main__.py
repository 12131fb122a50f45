"""``python -m gdbstub``: same as the ``e500-gdbstub`` command (see :mod:`gdbstub.cli`)."""

import sys

from gdbstub.cli import main

sys.exit(main())
