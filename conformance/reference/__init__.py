"""The embedded reference server: a small, faithful, deterministic OpenAI-compatible server."""

from .app import DEFAULT_MODEL, ReferenceConfig, create_app
from .faults import FAULTS, VARIANTS
from .server import ReferenceServer

__all__ = [
    "DEFAULT_MODEL",
    "FAULTS",
    "VARIANTS",
    "ReferenceConfig",
    "ReferenceServer",
    "create_app",
]
