"""NATS plumbing shared by the services: the event stream, commands, pings.

Commands go by request/reply. A reply is `{"ok": true, "result": …}` or
`{"ok": false, "error": <TaskRouterError.to_wire()>}`; `CommandClient.request`
turns the second form back into the same domain error, so a refusal raised by
the owner of some state reaches the gateway unchanged.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, ParamSpec

import orjson
from faststream.nats import NatsBroker
from nats.errors import NoRespondersError
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig

from shared.errors import TaskRouterError, UnavailableError, error_from_wire
from shared.events import Event
from shared.metrics import FAILED, REFUSED, note_command_outcome
from shared.partitions import partition_of
from shared.settings import CommonSettings
from shared.subjects import PARTITIONED_COMMANDS, Subjects

logger = logging.getLogger(__name__)

P = ParamSpec("P")


def make_broker(settings: CommonSettings) -> NatsBroker:
    """A broker that reconnects forever: a NATS restart must not end a service."""
    return NatsBroker(
        settings.nats_url.split(","),
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        logger=logging.getLogger("faststream"),
    )


def event_stream_config(settings: CommonSettings) -> StreamConfig:
    """The stream holding every event: file storage, deduplicated by event SID."""
    subjects = Subjects(settings.subject_prefix)
    return StreamConfig(
        name=subjects.event_stream,
        subjects=subjects.event_stream_subjects,
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=timedelta(days=settings.event_stream_max_age_days).total_seconds(),
        duplicate_window=timedelta(minutes=2).total_seconds(),
        discard=DiscardPolicy.OLD,
        num_replicas=settings.event_stream_replicas,
    )


def event_publisher(
    broker: NatsBroker, settings: CommonSettings
) -> Callable[[Event], Awaitable[None]]:
    """A function that publishes one event to its subject and waits for the ack.

    It uses nats-py's JetStream client directly: the message is buffered before
    the first suspension point, so concurrent calls reach the stream in call order
    (through FastStream's publisher they could overtake each other).
    """
    subjects = Subjects(settings.subject_prefix)

    async def publish(event: Event) -> None:
        subject = subjects.event(
            event.account_sid, event.workspace_sid, event.resource_sid, event.event_type
        )
        await broker.connection.jetstream().publish(
            subject,
            event.to_payload(),
            timeout=5.0,
            stream=subjects.event_stream,
            headers={"Nats-Msg-Id": event.sid, "content-type": "application/json"},
        )

    return publish


def command_reply(
    handler: Callable[P, Awaitable[Any]],
) -> Callable[P, Awaitable[bytes]]:
    """Wrap a command handler so its result or domain error becomes the reply."""

    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> bytes:
        try:
            result = await handler(*args, **kwargs)
        except TaskRouterError as exc:
            note_command_outcome(REFUSED)
            logger.info("command refused", extra={"error": type(exc).__name__, "reason": exc.message})
            return orjson.dumps({"ok": False, "error": exc.to_wire()})
        except Exception:
            note_command_outcome(FAILED)
            logger.exception("command failed")
            error = UnavailableError("the service failed to handle the command")
            return orjson.dumps({"ok": False, "error": error.to_wire()})
        return orjson.dumps({"ok": True, "result": result}, default=_default)

    # FastStream reads the signature to decode the body; the reply is bytes.
    signature = inspect.signature(handler, eval_str=True)
    wrapper.__signature__ = signature.replace(return_annotation=bytes)  # type: ignore[attr-defined]
    wrapper.__name__ = handler.__name__
    wrapper.__qualname__ = handler.__qualname__
    wrapper.__doc__ = handler.__doc__
    return wrapper


def _default(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"cannot encode {type(value).__name__}")


class CommandClient:
    """Sends commands to the service owning a piece of state and waits for the answer."""

    def __init__(self, broker: NatsBroker, settings: CommonSettings) -> None:
        self._broker = broker
        self._subjects = Subjects(settings.subject_prefix)
        self._partitions = settings.partitions if settings.partitioned else 1
        self._restart_wait = settings.command_restart_wait

    def subject(self, service: str, action: str, workspace_sid: str = "_") -> str:
        """The request subject of `action`: with the partition, where `service` has them."""
        if self._partitions > 1 and service in PARTITIONED_COMMANDS:
            partition = partition_of(workspace_sid, self._partitions)
            return self._subjects.partitioned_command(
                service, action, workspace_sid, partition
            )
        return self._subjects.command(service, action, workspace_sid)

    async def request(
        self,
        service: str,
        action: str,
        payload: dict[str, Any],
        *,
        workspace_sid: str = "_",
        timeout: float = 10.0,
        restart_wait: float | None = None,
    ) -> Any:
        """The command's result; UnavailableError when nobody answers in time.

        `restart_wait` bounds how long to keep asking while nobody subscribes
        (a restart, a partition hand-over); a read with an answer of its own to
        fall back on passes 0.
        """
        subject = self.subject(service, action, workspace_sid)
        body = orjson.dumps(payload, default=_default)
        # A partition's subject has nobody during a hand-over: wait as long as the
        # request may take. A service's own subject has nobody while it restarts.
        partitioned = subject != self._subjects.command(service, action, workspace_sid)
        wait = timeout if partitioned else min(timeout, self._restart_wait)
        if restart_wait is not None:
            wait = min(wait, restart_wait)
        try:
            message = await self._request_until_answered(body, subject, timeout, wait)
        except TimeoutError as exc:
            raise UnavailableError(f"{service} did not answer {action!r} in time") from exc
        except Exception as exc:  # no responders, connection closed
            raise UnavailableError(f"{service} is not reachable: {type(exc).__name__}") from exc
        reply = orjson.loads(message.body)
        if not reply.get("ok"):
            raise error_from_wire(reply.get("error") or {})
        return reply.get("result")

    async def _request_until_answered(
        self, body: bytes, subject: str, timeout: float, wait: float
    ) -> Any:
        """Request `subject`; while nobody subscribes, ask again for up to `wait` seconds.

        While a service restarts, or a partition changes hands, nobody subscribes
        to the subject and NATS answers "no responders" at once; the request was
        then received by nobody, so sending it again is safe. A request that was
        received and not answered is never sent again (it may have taken effect).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        give_up = loop.time() + wait
        pause = 0.02
        while True:
            left = deadline - loop.time()
            try:
                return await self._broker.request(body, subject, timeout=max(left, 0.01))
            except NoRespondersError:
                if give_up - loop.time() <= pause:
                    raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.25)

    async def ping(self, service: str, timeout: float = 1.0) -> bool:
        """True when `service` answers its readiness ping."""
        try:
            message = await self._broker.request(
                b"ping", self._subjects.ping(service), timeout=timeout
            )
        except Exception:
            return False
        return message.body == b"ready"
