"""Integration tests run against a whole stack in moto, with a runner whose engine is faked."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stack_support import ADMIN_HEADERS, FakeEngine, Stack, running_stack


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with running_stack(monkeypatch, FakeEngine()) as running:
        yield running


@pytest.fixture
def admin_headers() -> dict[str, str]:
    return dict(ADMIN_HEADERS)
