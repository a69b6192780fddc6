"""``python tests/fault_worker.py jobs.json``: the warm batch worker, now in
``conformance.face.runner`` (``python -m conformance.face.runner jobs.json``)."""

from __future__ import annotations

import sys

from conformance.face.runner import main

if __name__ == "__main__":
    sys.exit(main())
