"""Runs webhook deliveries: bounded concurrency, best-effort order, retries, restarts.

Deliveries written by the event handler start at once, in memory. Retries wait
on a timer. Every replica also scans the store for deliveries that are due and
that nobody holds (retries of a replica that went away, claims that expired,
deliveries left in the store when memory was full) and claims them.

Concurrency: at most `webhook_concurrency` requests in flight in total and
`webhook_workspace_concurrency` per workspace. A workspace's deliveries start
in the order they were submitted (asyncio semaphores wake waiters in order), so
with a per-workspace limit of 1 they also arrive in order, unless one is retried.
A slow receiver holds only its own workspace's slots.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from services.events.deliveries import (
    AttemptResult,
    DeliveryKind,
    DeliveryStatus,
    DeliveryStore,
    Finished,
    RetryLater,
    WebhookDelivery,
    finished_expiry,
)
from services.events.overrides import backoff_seconds
from services.events.settings import EventsSettings
from shared import metrics
from shared.errors import UnavailableError
from shared.logging import log_context
from shared.models import utcnow

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]


class AttemptHandler(Protocol):
    async def attempt(self, delivery: WebhookDelivery) -> AttemptResult: ...


@dataclass
class _Lane:
    """The slots of one workspace, dropped when nobody uses them."""

    slots: asyncio.Semaphore
    users: int = 0


class Deliverer:
    """Schedules and attempts deliveries; see the module docstring."""

    def __init__(
        self,
        store: DeliveryStore,
        handlers: dict[DeliveryKind, AttemptHandler],
        settings: EventsSettings,
        clock: Clock = utcnow,
    ) -> None:
        self._store = store
        self._handlers = handlers
        self._settings = settings
        self._clock = clock
        self._lease = timedelta(seconds=settings.webhook_lease_seconds)
        self._slots = asyncio.Semaphore(settings.webhook_concurrency)
        self._lanes: dict[str, _Lane] = {}
        self._held: dict[str, asyncio.Task[None] | asyncio.TimerHandle] = {}
        self._wake = asyncio.Event()

    # -- intake ---------------------------------------------------------------
    def first_attempt_times(self, count: int, now: datetime) -> list[datetime]:
        """`next_attempt_at` for `count` new deliveries about to be stored.

        Those that fit in memory are claimed by this replica from the start (one
        lease ahead); the rest are due at once and wait for a scan.
        """
        room = max(0, self._settings.webhook_max_in_memory - len(self._held))
        return [now + self._lease if i < room else now for i in range(count)]

    def submit(self, deliveries: list[WebhookDelivery]) -> None:
        """Start deliveries that were just stored."""
        now = self._clock()
        for delivery in deliveries:
            if delivery.next_attempt_at > now:
                self._spawn(delivery, claimed=True)
            else:
                self._wake.set()

    @property
    def held(self) -> int:
        """Deliveries this replica is attempting or waiting to retry."""
        return len(self._held)

    # -- scanning -------------------------------------------------------------
    async def run_scanner(self) -> None:
        """Pick up due deliveries forever (a background task)."""
        while True:
            try:
                await self.scan_once()
            except UnavailableError:
                logger.warning("delivery scan failed; will retry", exc_info=True)
            try:
                async with asyncio.timeout(
                    self._settings.webhook_scan_interval_seconds
                ):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()

    async def scan_once(self) -> int:
        """Start the due deliveries nobody here holds; returns how many."""
        room = self._settings.webhook_max_in_memory - len(self._held)
        if room <= 0:
            return 0
        started = 0
        for delivery in await self._store.due(self._clock(), room):
            if delivery.id not in self._held:
                self._spawn(delivery, claimed=False)
                started += 1
        if started:
            logger.debug("due deliveries picked up", extra={"count": started})
        return started

    async def stop(self) -> None:
        """Cancel everything in memory; the store keeps what is still pending."""
        for held in list(self._held.values()):
            held.cancel()
        tasks = [h for h in self._held.values() if isinstance(h, asyncio.Task)]
        await asyncio.gather(*tasks, return_exceptions=True)
        self._held.clear()

    # -- attempts -------------------------------------------------------------
    def _spawn(self, delivery: WebhookDelivery, *, claimed: bool) -> None:
        task = asyncio.create_task(
            self._run(delivery, claimed), name=f"webhook {delivery.id}"
        )
        self._held[delivery.id] = task

    async def _run(self, delivery: WebhookDelivery, claimed: bool) -> None:
        retry: RetryLater | None = None
        try:
            with log_context(
                delivery_id=delivery.id, workspace_sid=delivery.workspace_sid
            ):
                async with self._lane(delivery.workspace_sid), self._slots:
                    retry = await self._attempt(delivery, claimed)
        except UnavailableError:
            # The claim or the result could not be written; the lease runs out and
            # the delivery is due again, so nothing is lost.
            logger.warning(
                "delivery state not stored; retried after the lease", exc_info=True
            )
        except Exception:
            logger.exception("delivery attempt failed unexpectedly")
        finally:
            self._held.pop(delivery.id, None)
        if retry is not None:
            self._retry_later(delivery, retry.delay)

    async def _attempt(
        self, delivery: WebhookDelivery, claimed: bool
    ) -> RetryLater | None:
        """Claim if needed, attempt, store the result; returns the retry to schedule."""
        now = self._clock()
        # A claim made at intake may be near its end after a long wait for a slot.
        must_claim = not claimed or now >= delivery.next_attempt_at - self._lease / 4
        if must_claim and not await self._store.claim(delivery, now + self._lease):
            logger.debug("delivery taken by another replica")
            return None
        result = await self._attempt_safely(delivery)
        return await self._record(delivery, result)

    async def _attempt_safely(self, delivery: WebhookDelivery) -> AttemptResult:
        """The handler's result: an outage is retried, a bug ends the delivery.

        Ending it matters: an attempt that always crashes would otherwise come back
        after every lease, forever.
        """
        try:
            return await self._handlers[delivery.kind].attempt(delivery)
        except UnavailableError as exc:
            delay = backoff_seconds(
                delivery.attempts + 1, self._settings.webhook_backoff_seconds
            )
            return RetryLater(delay=delay, error=exc.message)
        except Exception as exc:
            logger.exception("webhook attempt crashed; delivery given up")
            return Finished(
                status=DeliveryStatus.FAILED,
                error=f"internal error: {type(exc).__name__}",
            )

    async def _record(
        self, delivery: WebhookDelivery, result: AttemptResult
    ) -> RetryLater | None:
        now = self._clock()
        changes = {
            "attempts": delivery.attempts + 1,
            "last_error": result.error,
            **result.changes,
        }
        if isinstance(result, Finished):
            changes.update(
                status=result.status,
                expires_at=finished_expiry(now, self._settings.webhook_keep_days),
            )
        else:
            changes["next_attempt_at"] = now + timedelta(seconds=result.delay)
        if not await self._store.save(delivery, **changes):
            logger.warning("delivery changed by another replica; result dropped")
            return None
        self._report_result(delivery, result)
        return result if isinstance(result, RetryLater) else None

    @staticmethod
    def _report_result(delivery: WebhookDelivery, result: AttemptResult) -> None:
        outcome = "retry" if isinstance(result, RetryLater) else result.status.value
        metrics.note_webhook_attempt(delivery.kind.value, outcome)
        extra = {
            "kind": delivery.kind.value,
            "attempts": delivery.attempts,
            "error": result.error,
        }
        if isinstance(result, RetryLater):
            logger.info(
                "webhook attempt failed; retry scheduled",
                extra={**extra, "delay": result.delay},
            )
        elif result.status is DeliveryStatus.FAILED:
            logger.warning("webhook delivery failed", extra=extra)
        else:
            logger.debug("webhook delivered", extra=extra)

    def _retry_later(self, delivery: WebhookDelivery, delay: float) -> None:
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._held.pop(delivery.id, None)
            self._spawn(delivery, claimed=False)

        self._held[delivery.id] = loop.call_later(delay, fire)

    def _lane(self, workspace_sid: str) -> _LaneSlot:
        return _LaneSlot(
            self._lanes, workspace_sid, self._settings.webhook_workspace_concurrency
        )


class _LaneSlot:
    """`async with`: one slot of a workspace's lane, created and dropped on demand."""

    def __init__(self, lanes: dict[str, _Lane], workspace_sid: str, size: int) -> None:
        self._lanes = lanes
        self._key = workspace_sid
        self._size = size

    async def __aenter__(self) -> None:
        lane = self._lanes.get(self._key)
        if lane is None:
            lane = self._lanes[self._key] = _Lane(asyncio.Semaphore(self._size))
        lane.users += 1
        try:
            await lane.slots.acquire()
        except BaseException:
            self._leave(lane)
            raise

    async def __aexit__(self, *exc_info: object) -> None:
        lane = self._lanes[self._key]
        lane.slots.release()
        self._leave(lane)

    def _leave(self, lane: _Lane) -> None:
        lane.users -= 1
        if lane.users == 0:
            self._lanes.pop(self._key, None)
