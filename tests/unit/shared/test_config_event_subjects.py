"""Subject patterns of configuration events agree with `is_configuration_event`,
and the router's patterns cover every event type it acts on."""

import pytest

from services.workflow_router.router import ROUTING_EVENT_TYPES
from shared.config_view import CONFIGURATION_EVENT_TYPES, is_configuration_event

# Every event type of our spec (taskrouter/events.md) and of the services.
KNOWN_EVENT_TYPES = """
activity.created activity.updated activity.deleted
reservation.accepted reservation.canceled reservation.completed reservation.created
reservation.failed reservation.rejected reservation.rescinded reservation.timeout
reservation.wrapup reservation.callback-failed
task-channel.created task-channel.updated task-channel.deleted
task-queue.created task-queue.deleted task-queue.entered task-queue.expression.updated
task-queue.moved task-queue.timeout task-queue.updated
task.canceled task.completed task.created task.deleted task.system-deleted
task.transfer-initiated task.updated task.wrapup
worker.activity.update worker.attributes.update worker.capacity.update
worker.channel.availability.update worker.created worker.deleted
workflow.created workflow.updated workflow.deleted workflow.entered workflow.skipped
workflow.target-matched workflow.timeout
workspace.created workspace.updated workspace.deleted
""".split()


def matches(pattern: str, event_type: str) -> bool:
    """NATS subject matching over the event-type tokens (`*` one token, `>` the rest)."""
    wanted, tokens = pattern.split("."), event_type.split(".")
    for index, part in enumerate(wanted):
        if part == ">":
            return len(tokens) > index
        if index >= len(tokens) or (part != "*" and part != tokens[index]):
            return False
    return len(tokens) == len(wanted)


@pytest.mark.parametrize("event_type", KNOWN_EVENT_TYPES)
def test_configuration_subjects_match_exactly_the_configuration_events(event_type):
    subscribed = any(matches(p, event_type) for p in CONFIGURATION_EVENT_TYPES)
    assert subscribed == is_configuration_event(event_type)


ROUTER_ACTS_ON = {
    "task.created", "task.updated", "task.canceled", "task.completed", "task.deleted",
    "task.system-deleted", "reservation.accepted", "reservation.rejected",
    "reservation.timeout", "reservation.canceled",
}


@pytest.mark.parametrize("event_type", KNOWN_EVENT_TYPES)
def test_the_router_receives_what_it_acts_on_and_not_routing_or_worker_events(event_type):
    received = any(matches(p, event_type) for p in ROUTING_EVENT_TYPES)
    wanted = event_type in ROUTER_ACTS_ON or is_configuration_event(event_type)
    if event_type.startswith("task."):
        wanted = True  # `task.>`: the other task events are few and ignored
    assert received == wanted


def test_the_routers_patterns_do_not_overlap():
    # JetStream refuses a consumer whose filter subjects overlap.
    for a in ROUTING_EVENT_TYPES:
        for b in ROUTING_EVENT_TYPES:
            if a != b:
                assert not matches(a, b.replace(">", "x")) and not matches(b, a.replace(">", "x"))
