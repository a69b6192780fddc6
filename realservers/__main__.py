"""``python -m realservers``: see :mod:`realservers.cli`."""

import sys

from realservers.cli import main

sys.exit(main())
