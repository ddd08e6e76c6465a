"""Who may act: responders and approvers, as Slack user ids or user groups (resolved with
usergroups.users.list and cached for a few minutes)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

log = logging.getLogger(__name__)
GROUP_TTL_SECONDS = 300.0


class Directory:
    """User-group membership from Slack, cached per group."""

    def __init__(self, client: WebClient, *, ttl: float = GROUP_TTL_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.ttl = ttl
        self.clock = clock
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()

    def cached(self, group: str) -> frozenset[str] | None:
        """Return the group's members if known and fresh, without calling Slack."""
        with self._lock:
            entry = self._cache.get(group)
        if entry is None or self.clock() - entry[0] > self.ttl:
            return None
        return entry[1]

    def members(self, group: str) -> frozenset[str]:
        """Return the group's members, asking Slack when the cache is cold or stale."""
        known = self.cached(group)
        if known is not None:
            return known
        try:
            response = self.client.usergroups_users_list(usergroup=group)
            listed: list[str] = list(response.get("users") or [])
            users = frozenset(str(u) for u in listed)
        except (SlackApiError, SlackClientError, OSError) as exc:
            log.error("cannot resolve user group %s: %s", group, exc)
            with self._lock:  # fail closed, but keep a stale answer rather than none
                stale = self._cache.get(group)
            return stale[1] if stale else frozenset()
        with self._lock:
            self._cache[group] = (self.clock(), users)
        return users


class SlackAccess:
    """Implements the engine's Access: responders and approvers from settings."""

    def __init__(self, directory: Directory, *, responders: tuple[str, ...],
                 approvers: tuple[str, ...], allow_everyone: bool) -> None:
        self.directory = directory
        self.responders = responders
        self.approvers = approvers
        self.allow_everyone = allow_everyone

    def is_responder(self, user: str) -> bool:
        """True when the user may open incidents and request steps."""
        return self.allow_everyone or self._member(user, self.responders)

    def is_approver(self, user: str) -> bool:
        """True when the user may approve another person's request."""
        return self._member(user, self.approvers)

    def has_approvers(self) -> bool:
        """True when anyone at all may approve."""
        return bool(self.approvers)

    def quick_is_responder(self, user: str) -> bool | None:
        """Answer from memory only (for an ack); None when a group must be fetched."""
        if self.allow_everyone or user in self.responders:
            return True
        unknown = False
        for group in (g for g in self.responders if g.startswith("S")):
            members = self.directory.cached(group)
            if members is None:
                unknown = True
            elif user in members:
                return True
        return None if unknown else False

    def warm(self) -> None:
        """Resolve every configured group once (at start-up)."""
        for group in {*self.responders, *self.approvers}:
            if group.startswith("S"):
                self.directory.members(group)

    def _member(self, user: str, ids: tuple[str, ...]) -> bool:
        if user in ids:
            return True
        return any(user in self.directory.members(g) for g in ids if g.startswith("S"))
