"""chatcompat load tests: Locust scenarios that measure TTFT, ITL and throughput accurately.

Run ``locust -f loadtests/locustfile.py --host http://HOST:PORT/v1``; see docs/loadtests.md.
Modules that import Locust (``user``, ``hooks``, ``rows``, ``locustfile``, ``sweep``) must
only be imported in a Locust process: Locust monkey-patches the standard library with gevent.
"""
