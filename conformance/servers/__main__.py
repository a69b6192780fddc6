"""``python -m conformance.servers``: see :mod:`conformance.servers.cli`."""

import sys

from .cli import main

sys.exit(main())
