"""Partitioned command subjects, and which senders use them, without I/O."""

from __future__ import annotations

import pytest

from shared.bus import CommandClient
from shared.partitions import partition_of
from shared.settings import CommonSettings, load
from shared.subjects import EVENTS, QUEUE_DISPATCHER, Subjects

WS = "WS0123456789abcdef0123456789abcdef"


def _client(**env: str) -> CommandClient:
    # The broker is only used to send; building subjects needs none.
    return CommandClient(None, load(CommonSettings, env))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("env", "partitioned"),
    [
        ({}, False),
        ({"TASKROUTER_PARTITIONING": "off"}, False),
        ({"TASKROUTER_PARTITIONING": "on", "TASKROUTER_PARTITIONS": "1"}, False),
        ({"TASKROUTER_PARTITIONING": "on"}, True),
        ({"TASKROUTER_PARTITIONING": "on", "TASKROUTER_PARTITIONS": "4"}, True),
    ],
    ids=["default", "off", "one-partition", "on", "on-4"],
)
def test_partitioned_only_when_on_with_more_than_one_partition(env, partitioned):
    assert load(CommonSettings, env).partitioned is partitioned


def test_default_sender_keeps_todays_subject():
    assert _client().subject(QUEUE_DISPATCHER, "task.create", WS) == (
        f"taskrouter.cmd.queue-dispatcher.{WS}.task.create"
    )


def test_partitioned_sender_puts_the_partition_in_the_subject():
    client = _client(TASKROUTER_PARTITIONING="on", TASKROUTER_PARTITIONS="8")
    partition = partition_of(WS, 8)

    subject = client.subject(QUEUE_DISPATCHER, "task.create", WS)

    assert subject == f"taskrouter.cmd.queue-dispatcher.p{partition}.{WS}.task.create"


def test_services_that_are_not_partitioned_keep_their_subject():
    client = _client(TASKROUTER_PARTITIONING="on")
    assert client.subject(EVENTS, "x.y", WS) == f"taskrouter.cmd.events.{WS}.x.y"


def test_partition_listener_matches_every_action_and_reads_it_back():
    subjects = Subjects("tr")
    subject = subjects.partitioned_command(
        QUEUE_DISPATCHER, "worker-channel.update", WS, 3
    )

    assert subjects.partition_command_listener(QUEUE_DISPATCHER, 3) == (
        "tr.cmd.queue-dispatcher.p3.*.>"
    )
    assert (
        subjects.partitioned_action(QUEUE_DISPATCHER, subject)
        == "worker-channel.update"
    )


def test_partitioned_action_refuses_another_services_subject():
    with pytest.raises(ValueError, match="not a command subject"):
        Subjects("tr").partitioned_action(QUEUE_DISPATCHER, "tr.cmd.events.p1.WS1.a")


def test_routing_transform_hashes_the_workspace_token():
    source, destination = Subjects("tr").routing_transform(16)
    assert source == "tr.events.*.*.>"
    assert (
        destination
        == "tr.routing.{{partition(16,2)}}.{{wildcard(1)}}.{{wildcard(2)}}.>"
    )
