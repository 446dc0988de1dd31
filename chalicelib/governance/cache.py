"""Decision cache and the permission checker that uses it.

Each process keeps its own cache. A process that changes a rule or a
maturity invalidates its cache at once (``PermissionChecker.rules_changed`` /
``agent_changed``); other processes see the change when their entries
expire (``PACKAGE_CACHE_TTL``, default 60 s).

The hit path takes no lock: a dict lookup, a clock read and an
``OrderedDict.move_to_end`` are each atomic under the GIL, and an entry
evicted or invalidated between them is simply treated as a miss. Writes
(put, eviction, invalidation) take the lock. A generation counter, bumped by
every invalidation, keeps a miss that read the rules *before* an
invalidation from storing its now stale decision *after* it.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from chalicelib.governance.decision import Decision, decide, decide_before_resolution
from chalicelib.governance.identity import Agent
from chalicelib.governance.rules import RuleSet, normalize_package_name, parse_exact_version

CacheKey = tuple[str, str, str]  # (agent_id, normalized package, normalized exact version)


class DecisionCache:
    """LRU cache of decisions with a time to live; thread-safe."""

    def __init__(
        self,
        ttl_seconds: float = 60.0,
        max_size: int = 1000,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_seconds < 0:
            raise ValueError("ttl_seconds must be >= 0")
        if max_size < 0:
            raise ValueError("max_size must be >= 0")
        self.ttl_seconds = float(ttl_seconds)
        self.max_size = int(max_size)
        self._clock = clock
        self._entries: OrderedDict[CacheKey, tuple[float, Decision]] = OrderedDict()
        self._lock = threading.Lock()
        self._generation = 0
        # Counters are approximate under concurrency (unlocked increments); they are for metrics only.
        self.hits = 0
        self.misses = 0

    @classmethod
    def from_settings(cls, settings: object | None = None) -> DecisionCache:
        """A cache sized by ``PACKAGE_CACHE_TTL`` / ``PACKAGE_CACHE_MAX_SIZE``."""
        if settings is None:
            from chalicelib.settings import get_settings

            settings = get_settings()
        return cls(ttl_seconds=settings.package_cache_ttl, max_size=settings.package_cache_max_size)  # type: ignore[attr-defined]

    @property
    def generation(self) -> int:
        """Bumped by every invalidation; pass it back to :meth:`put` to avoid storing stale decisions."""
        return self._generation

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: CacheKey) -> Decision | None:
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        if entry[0] <= self._clock():
            with self._lock:
                if self._entries.get(key) is entry:
                    del self._entries[key]
            self.misses += 1
            return None
        try:
            self._entries.move_to_end(key)
        except KeyError:  # evicted or invalidated meanwhile; the decision read is still a valid answer
            pass
        self.hits += 1
        return entry[1]

    def put(self, key: CacheKey, decision: Decision, *, generation: int | None = None) -> None:
        """Store ``decision``; skipped when ``generation`` is given and an invalidation happened since."""
        if self.max_size == 0 or self.ttl_seconds == 0:
            return
        with self._lock:
            if generation is not None and generation != self._generation:
                return
            self._entries[key] = (self._clock() + self.ttl_seconds, decision)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_size:
                self._entries.popitem(last=False)

    def invalidate_package(self, package: str) -> int:
        """Drop every decision about ``package`` (any spelling); returns how many were dropped."""
        name = normalize_package_name(package)
        return self._invalidate(lambda key: key[1] == name)

    def invalidate_agent(self, agent_id: str) -> int:
        """Drop every decision about ``agent_id``; returns how many were dropped."""
        return self._invalidate(lambda key: key[0] == agent_id)

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()

    def _invalidate(self, matches: Callable[[CacheKey], bool]) -> int:
        with self._lock:
            self._generation += 1
            stale = [key for key in self._entries if matches(key)]
            for key in stale:
                del self._entries[key]
            return len(stale)


class AgentLookup(Protocol):
    def get_agent(self, agent_id: str) -> Agent | None: ...


class RulesLookup(Protocol):
    def rules_for(self, package: str) -> RuleSet: ...


#: the cache key's agent for decisions that hold for every agent (agent ids are never empty)
_ANY_AGENT = ""


class PermissionChecker:
    """``check(agent_id, package, version)``: cached :func:`decide` over the stores.

    ``is_flagged_typosquat(package) -> bool`` (optional) marks packages that
    need an approval naming the exact version (see ``decision``).
    Call :meth:`rules_changed` after writing a rule for a package and
    :meth:`agent_changed` after creating an agent or changing its maturity.
    """

    def __init__(
        self,
        agents: AgentLookup,
        rules: RulesLookup,
        cache: DecisionCache | None = None,
        *,
        is_flagged_typosquat: Callable[[str], bool] | None = None,
    ) -> None:
        self.agents = agents
        self.rules = rules
        self.cache = cache if cache is not None else DecisionCache.from_settings()
        self._is_flagged_typosquat = is_flagged_typosquat

    def check(self, agent_id: str, package: str, version: str) -> Decision:
        """The decision for ``agent_id`` using ``package`` at exact ``version``.

        BadRequest when the package name or the version is malformed (both
        parsers are memoised, so a hit stays a few dictionary lookups).
        """
        key = (agent_id, normalize_package_name(package), parse_exact_version(version))
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        generation = self.cache.generation
        decision = self.decide_uncached(agent_id, key[1], key[2])
        self.cache.put(key, decision, generation=generation)
        return decision

    def decide_uncached(self, agent_id: str, package: str, version: str) -> Decision:
        """Read the agent and the package's rules and decide, bypassing the cache."""
        agent = self.agents.get_agent(agent_id)
        package = normalize_package_name(package)
        rules = self.rules.rules_for(package)
        flagged = bool(self._is_flagged_typosquat and self._is_flagged_typosquat(package))
        return decide(agent, package, version, rules, requires_explicit_approval=flagged, agent_id=agent_id)

    def precheck(self, agent_id: str, package: str, specifier: str) -> Decision:
        """Whether resolving ``package`` within ``specifier`` for ``agent_id`` can lead anywhere (uncached:
        it runs once per request, before a resolution that costs far more)."""
        package = normalize_package_name(package)
        flagged = bool(self._is_flagged_typosquat and self._is_flagged_typosquat(package))
        return decide_before_resolution(self.agents.get_agent(agent_id), package, specifier, self.rules.rules_for(package),
                                        requires_explicit_approval=flagged, agent_id=agent_id)  # fmt: skip

    def ban_check(self, package: str, version: str) -> Decision:
        """Whether a ban covers ``package`` at ``version``, whoever asks (cached like decisions).

        Execution applies it to transitive pins, which need no approval but
        must stop the moment an admin bans them.
        """
        key = (_ANY_AGENT, normalize_package_name(package), parse_exact_version(version))
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        generation = self.cache.generation
        rules = self.rules.rules_for(key[1])
        ban = next((b for b in rules.active_bans if b.contains(key[2])), None)
        decision = (
            Decision(allowed=False, maturity_required=None, reason=f"{key[1]} {key[2]} is banned: {ban.reason}")
            if ban is not None
            else Decision(allowed=True, maturity_required=None, reason="no ban applies")
        )
        self.cache.put(key, decision, generation=generation)
        return decision

    def rules_changed(self, package: str) -> None:
        """A rule of ``package`` was added or revoked in this process."""
        self.cache.invalidate_package(package)

    def agent_changed(self, agent_id: str) -> None:
        """``agent_id`` was created or its maturity changed in this process."""
        self.cache.invalidate_agent(agent_id)

    def clear(self) -> None:
        self.cache.clear()
