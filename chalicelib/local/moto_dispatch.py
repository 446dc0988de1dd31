"""moto's per-request dispatch at the cost of a dictionary lookup, not of a directory listing.

For every request, moto's server works out which backend a Host header names:
it lists moto's package directory (an ``isdir`` per service, some 150) and
then tries each service's URL patterns, all while holding the dispatcher's one
lock, so every request of every thread queues behind it. It then lists the
response class's methods with ``inspect.getmembers`` to find the action. On
the local stack these two were a tenth of the API process's CPU during steady
executes (py-spy, 2026-12-07), and the answer never changes for a given host
or class: both are remembered here, once per host and once per class.
"""

from __future__ import annotations

import functools
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication

_MARK = "_skillharbor_cached_method_names"
_UNSEEN = object()


class CachingDispatcherApplication(DomainDispatcherApplication):
    """moto's dispatcher with its host → backend answer remembered (called under the dispatcher's lock)."""

    def __init__(self, create_app: Any):
        super().__init__(create_app)
        self._backend_for_host: dict[str | None, Any] = {}

    def get_backend_for_host(self, host: str | None) -> Any:
        backend = self._backend_for_host.get(host, _UNSEEN)
        if backend is _UNSEEN:
            backend = self._backend_for_host[host] = super().get_backend_for_host(host)
        return backend


def cache_action_lookup() -> None:
    """Remember each response class's method names (moto reads them with inspect on every call; idempotent)."""
    from moto.core import responses

    if getattr(responses, _MARK, False):
        return
    responses.method_names_from_class = functools.cache(responses.method_names_from_class)  # type: ignore[assignment]
    setattr(responses, _MARK, True)
