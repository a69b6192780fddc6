"""Entry point: ``locust -f loadtests/locustfile.py --host http://HOST:PORT/v1``.

Closed loop with ``-u``/``-r``; open loop with ``--arrival-rate``; for sweeps use
``loadtests/sweep.py`` instead (same user, plus a load shape). Options: ``locust --help``
under "chatcompat load test", or docs/loadtests.md.
"""

from loadtests import hooks  # noqa: F401  (registers the event listeners)
from loadtests.user import ChatUser

__all__ = ["ChatUser"]
