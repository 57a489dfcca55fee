"""Entry point of ``python -m conformance.recorders`` (see :mod:`.cli`)."""

import sys

from conformance.recorders.cli import main

sys.exit(main())
