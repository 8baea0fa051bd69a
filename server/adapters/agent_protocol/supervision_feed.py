"""What a supervisor's socket is sent besides an agent's frames: the organisation's live
picture (docs/protocol.md, "Supervisors").

A session whose user is a supervisor or an administrator `join`s the feed after its agent
snapshot: it is sent a `supervisor_snapshot` (every workgroup queue's figures and agents by
state, every agent, every live interaction, and the queue samples of the last `CHART_HOURS`).
After each commit the hub tells the feed which organisations' queues changed (`changed`); at
most once a second, each of those organisations with a supervisor connected gets one
`supervisor_update` (the same picture, and the samples taken since the last update), built in
the driver's writer so that it agrees with what was committed, and encoded once for all its
supervisors.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa

from server.adapters.clock import Clock
from server.adapters.persistence.queue_samples import CHART_HOURS, recent_samples
from server.core import events as core
from server.core.switchboard import Switchboard
from server.driver import Driver, DriverStopped

if TYPE_CHECKING:
    from server.adapters.agent_protocol.gateway import AgentSession

__all__ = ["SUPERVISOR_COMMANDS", "UPDATE_INTERVAL_S", "SupervisionFeed", "supervision_frame"]

UPDATE_INTERVAL_S = 1.0

log = logging.getLogger("parley.agents")

# The supervisors' commands: frame, organisation id, user id, role, username → the core event.
SUPERVISOR_COMMANDS: dict[str, Callable[[dict[str, Any], int, int, str, str], core.Event]] = {
    "supervisor_transfer": lambda f, org, user, role, actor: core.SupervisorTransferRequested(
        org,
        user,
        role,
        actor,
        f["interaction_id"],
        "user" if "user" in f["to"] else "workgroup",
        f["to"].get("user") or f["to"].get("workgroup"),
    ),
    "supervisor_disconnect": lambda f, org, user, role, actor: core.SupervisorDisconnectRequested(
        org, user, role, actor, f["interaction_id"]
    ),
    "set_agent_state": lambda f, org, user, role, actor: core.AgentStateSet(
        org, user, role, actor, f["agent_id"], f["state"], f.get("reason")
    ),
}


def supervision_frame(
    switchboard: Switchboard,
    connection: sa.Connection,
    *,
    organisation_id: int,
    now: datetime,
    after: datetime | None,
) -> str:
    """A `supervisor_snapshot` (`after` None: the samples of the last `CHART_HOURS`) or a
    `supervisor_update` (the samples taken after `after`), encoded. Runs in the writer, so
    that it agrees with what was committed; encoded there once, for all the supervisors."""
    frame: dict[str, Any] = {
        "type": "supervisor_snapshot" if after is None else "supervisor_update",
        "at": now,
        **switchboard.supervision_view(organisation_id, now),
        "samples": recent_samples(
            connection, organisation_id=organisation_id, now=now, after=after
        ),
    }
    if after is None:
        frame["chart_hours"] = CHART_HOURS
    return orjson.dumps(frame, option=orjson.OPT_UTC_Z).decode()


class SupervisionFeed:
    """The supervisors' sessions by organisation, and their updates."""

    def __init__(self, *, driver: Driver, clock: Clock) -> None:
        self._driver, self._clock = driver, clock
        self._sessions: dict[int, set[AgentSession]] = {}
        self._pending: set[int] = set()
        self._since: dict[int, datetime] = {}  # organisation: the last update's time
        self._task: asyncio.Task[None] | None = None
        self._last = 0.0

    async def join(self, session: AgentSession) -> None:
        """Send `session` the snapshot, then the updates of its organisation."""
        organisation_id, now = session.organisation_id, self._clock.now()
        text = await self._driver.query(
            lambda switchboard, connection: supervision_frame(
                switchboard, connection, organisation_id=organisation_id, now=now, after=None
            )
        )
        self._since.setdefault(organisation_id, now)
        session.send_encoded(text)
        self._sessions.setdefault(organisation_id, set()).add(session)

    def leave(self, session: AgentSession) -> None:
        sessions = self._sessions.get(session.organisation_id)
        if sessions is not None:
            sessions.discard(session)
            if not sessions:
                del self._sessions[session.organisation_id]

    def changed(self, organisation_ids: Callable[[], set[int]]) -> None:
        """Some queues of these organisations changed (called on the loop after a commit)."""
        if not self._sessions:
            return
        self._pending |= organisation_ids() & self._sessions.keys()
        if self._pending and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        try:
            wait = self._last + UPDATE_INTERVAL_S - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._last = time.monotonic()
            pending, self._pending = self._pending, set()
            for organisation_id in sorted(pending):
                await self._update(organisation_id)
        except DriverStopped:
            return
        except Exception:  # the store failed: the next change sends a new picture
            log.exception("a supervisors' update failed")
        finally:
            self._task = None
        if self._pending:  # changed while this one was being built
            self._task = asyncio.get_running_loop().create_task(self._flush())

    async def _update(self, organisation_id: int) -> None:
        if not self._sessions.get(organisation_id):
            return
        now = self._clock.now()
        after = self._since.get(organisation_id, now)
        text = await self._driver.query(
            lambda switchboard, connection: supervision_frame(
                switchboard, connection, organisation_id=organisation_id, now=now, after=after
            )
        )
        self._since[organisation_id] = max(after, now)
        for session in list(self._sessions.get(organisation_id, ())):
            session.send_encoded(text)

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
