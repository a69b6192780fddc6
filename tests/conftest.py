"""Shared fixtures: one reference server per session, serving every fault by path prefix."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from suite_runner import API_KEY

from conformance.reference import ReferenceConfig, ReferenceServer


@pytest.fixture(scope="session")
def reference() -> Iterator[ReferenceServer]:
    with ReferenceServer(ReferenceConfig(api_key=API_KEY)) as server:
        yield server
