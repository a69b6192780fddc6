"""The embedded reference server: a small, faithful, deterministic OpenAI-compatible server."""

from conformance.reference.app import DEFAULT_MODEL, REASONING_MODEL, ReferenceConfig, create_app
from conformance.reference.faults import FAULTS, VARIANTS
from conformance.reference.server import ReferenceServer

__all__ = [
    "DEFAULT_MODEL",
    "FAULTS",
    "REASONING_MODEL",
    "VARIANTS",
    "ReferenceConfig",
    "ReferenceServer",
    "create_app",
]
