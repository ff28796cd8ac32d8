"""The weights-cache tests' shared fixture: a private cache directory and the tiny .pth model."""

import pytest

from rexjax.models import cache, registry
from tests.helpers import tiny_pth_model as tiny


@pytest.fixture
def cached(tmp_path, monkeypatch):
    monkeypatch.setenv("REXJAX_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(registry, "USER_MODELS", {})
    monkeypatch.setattr(cache, "_warned", set())
    tiny.register()
    return tmp_path / "cache"
