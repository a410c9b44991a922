"""Assignment callbacks: ask the workflow's AssignmentCallbackUrl about a reservation.

On `reservation.created` in a workflow with an AssignmentCallbackUrl (workflows.md §6):

1. POST the assignment parameters, signed like every webhook, with 5 s to answer.
2. On a timeout, a connection error or a non-2xx, POST the same to the
   FallbackAssignmentCallbackUrl, if there is one.
3. If a callback answered 2xx with `{"instruction": "accept"}` or
   `{"instruction": "reject", "activity_sid": ...}`, send `reservation.update` to the
   queue-dispatcher. An empty or non-instruction 2xx leaves the reservation pending
   for the application to act through REST.
4. If both URLs failed, send `reservation.callback-failed`; the queue-dispatcher
   cancels the reservation and routes the task again.

Telephony instructions (`dequeue`, `call`, `redirect`, `conference`) are not
supported: they are logged as a WARNING, recorded on the delivery, and the
reservation stays pending until it is accepted through REST or times out.

Steps 3 and 4 are retried when the queue-dispatcher cannot be reached; the stage
reached is stored, so a retry never posts the callback again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from services.events.deliveries import (
    AttemptResult,
    DeliveryStatus,
    Finished,
    RetryLater,
    WebhookDelivery,
)
from services.events.event_callbacks import describe
from services.events.instructions import Instruction, read_instruction
from services.events.overrides import ConnectionOverrides, backoff_seconds
from services.events.sender import Sender
from shared.commands import UpdateReservation
from shared.errors import TaskRouterError
from shared.subjects import QUEUE_DISPATCHER

logger = logging.getLogger(__name__)

TokenLookup = Callable[[str], Awaitable[str | None]]

UPDATE_ACTION = "reservation.update"
CALLBACK_FAILED_ACTION = "reservation.callback-failed"
STATUS_OF = {"accept": "accepted", "reject": "rejected"}

# Stages stored on the delivery record.
POST_CALLBACK = ""
SEND_INSTRUCTION = "instruction"
SEND_CALLBACK_FAILED = "callback-failed"

# How often a command to an unreachable queue-dispatcher is tried before giving up;
# by then the reservation has usually timed out anyway.
MAX_COMMAND_ATTEMPTS = 10


class CommandSender(Protocol):
    async def request(
        self,
        service: str,
        action: str,
        payload: dict[str, Any],
        *,
        workspace_sid: str = "_",
    ) -> Any: ...


class AssignmentCallbacks:
    """Attempts of assignment-callback deliveries; see the module docstring."""

    def __init__(
        self,
        sender: Sender,
        auth_token: TokenLookup,
        commands: CommandSender,
        *,
        timeout_seconds: float = 5.0,
        backoff_base: float = 1.0,
    ) -> None:
        self._sender = sender
        self._auth_token = auth_token
        self._commands = commands
        ms = int(timeout_seconds * 1000)
        self._overrides = ConnectionOverrides(
            connect_timeout_ms=ms,
            read_timeout_ms=ms,
            total_timeout_ms=ms,
            retry_count=0,
        )
        self._backoff_base = backoff_base

    async def attempt(self, delivery: WebhookDelivery) -> AttemptResult:
        if delivery.stage == SEND_INSTRUCTION and delivery.instruction is not None:
            return await self._instruct(
                delivery, Instruction.from_record(delivery.instruction)
            )
        if delivery.stage == SEND_CALLBACK_FAILED:
            return await self._report_failure(delivery, delivery.last_error)
        return await self._ask(delivery)

    async def _ask(self, delivery: WebhookDelivery) -> AttemptResult:
        """Steps 1 and 2: the callback, then the fallback."""
        token = await self._auth_token(delivery.account_sid)
        errors = []
        for url in filter(None, (delivery.url, delivery.fallback_url)):
            outcome = await self._sender.post(
                url,
                delivery.params,
                auth_token=token,
                idempotency_token=delivery.idempotency_token,
                overrides=self._overrides,
            )
            if outcome.delivered:
                instruction = read_instruction(outcome.body)
                if instruction is None:
                    logger.info("assignment callback answered without instruction")
                    return Finished(status=DeliveryStatus.DELIVERED)
                return await self._instruct(delivery, instruction)
            errors.append(describe(outcome))
        return await self._report_failure(delivery, "; ".join(errors))

    async def _instruct(
        self, delivery: WebhookDelivery, instruction: Instruction
    ) -> AttemptResult:
        """Step 3: carry out `accept` or `reject`; record anything else."""
        record = {"instruction": instruction.to_record()}
        if not instruction.supported:
            logger.warning(
                "assignment instruction not supported; reservation left pending",
                extra={"instruction": instruction.name},
            )
            error = f"instruction {instruction.name!r} is not supported"
            return Finished(
                status=DeliveryStatus.DELIVERED, error=error, changes=record
            )
        command = UpdateReservation(
            account_sid=delivery.account_sid,
            workspace_sid=delivery.workspace_sid,
            reservation_sid=delivery.params["ReservationSid"],
            task_sid=delivery.params.get("TaskSid"),
            reservation_status=STATUS_OF[instruction.name],
            worker_activity_sid=instruction.activity_sid,
        )
        changes = {**record, "stage": SEND_INSTRUCTION}
        return await self._command(
            delivery, UPDATE_ACTION, command.model_dump(), changes
        )

    async def _report_failure(
        self, delivery: WebhookDelivery, error: str | None
    ) -> AttemptResult:
        """Step 4: both callbacks failed; the queue-dispatcher cancels it."""
        payload = {
            "account_sid": delivery.account_sid,
            "workspace_sid": delivery.workspace_sid,
            "reservation_sid": delivery.params["ReservationSid"],
        }
        changes = {"stage": SEND_CALLBACK_FAILED}
        result = await self._command(
            delivery, CALLBACK_FAILED_ACTION, payload, changes, error
        )
        if isinstance(result, Finished):
            result.status = DeliveryStatus.FAILED
        return result

    async def _command(
        self,
        delivery: WebhookDelivery,
        action: str,
        payload: dict[str, Any],
        changes: dict[str, Any],
        error: str | None = None,
    ) -> AttemptResult:
        """Send a command to the queue-dispatcher; retry later if unreachable."""
        try:
            await self._commands.request(
                QUEUE_DISPATCHER, action, payload, workspace_sid=delivery.workspace_sid
            )
        except TaskRouterError as exc:
            if exc.retryable and delivery.attempts + 1 < MAX_COMMAND_ATTEMPTS:
                delay = backoff_seconds(delivery.attempts + 1, self._backoff_base)
                return RetryLater(
                    delay=delay, error=error or exc.message, changes=changes
                )
            # A refusal (the reservation timed out meanwhile...) is expected.
            logger.info(
                "assignment command refused",
                extra={"action": action, "reason": exc.message},
            )
            return Finished(
                status=DeliveryStatus.DELIVERED, error=exc.message, changes=changes
            )
        logger.info("assignment command sent", extra={"action": action})
        return Finished(status=DeliveryStatus.DELIVERED, error=error, changes=changes)
