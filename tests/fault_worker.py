"""``python tests/fault_worker.py jobs.json``: the warm batch worker, now in
``conformance.runner`` (``python -m conformance.runner jobs.json``)."""

from __future__ import annotations

import sys

from conformance.runner import main

if __name__ == "__main__":
    sys.exit(main())
