"""The run's settings and where they are kept: a module of its own so that the plugin (which
fills them) and the report writers (which read them) both import it without importing each
other."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conformance.api.capabilities import Capabilities
from conformance.transport.client import Limits

#: Set by a parent run (several models) in its children's environment: where the key it
#: passes them as OPENAI_API_KEY really came from, so a child's notice tells the truth.
KEY_SOURCE_ENV = "CHATCOMPAT_KEY_SOURCE"


@dataclass
class Settings:
    """Everything a run needs to know, resolved once from options and environment."""

    base_url: str | None
    api_key: str | None
    model: str | None
    strict: bool
    reports_dir: Path
    limits: Limits
    verify_tls: bool
    reference_faults: frozenset[str] = frozenset()
    capabilities: Capabilities = field(default_factory=Capabilities)
    write_reports: bool = True
    #: Where the key came from: "option", "environment" or None (no key is sent).
    key_source: str | None = None  # 'option' or 'environment' (KEY_SOURCE_ENV in children)

    @property
    def embedded(self) -> bool:
        return self.base_url is None


SETTINGS = pytest.StashKey[Settings]()
