"""Every NATS subject the system uses. Nothing else builds subject strings.

Events (a public interface, kept by the JetStream stream `TASKROUTER_EVENTS`,
named `<PREFIX>_EVENTS` for another prefix):

    <prefix>.events.<account_sid>.<workspace_sid>.<resource_sid>.<event_type>

Event types contain dots (`task-queue.entered`), so they span two or three
tokens. Examples of subscriptions:

    taskrouter.events.AC….WS….>                    everything in one workspace
    taskrouter.events.AC….WS….WT….>                everything about one task
    taskrouter.events.*.*.*.reservation.>          every reservation event
    taskrouter.events.AC….WS….*.task.completed     one event type in one workspace

Commands (request/reply, core NATS, never captured by a stream):

    <prefix>.cmd.<service>.<workspace_sid>.<action>

The workspace token lets a partitioned service subscribe to its share. With
partitioning on (`shared.partitions`), commands to a partitioned service carry
the workspace's partition too, so only the replica owning it receives them:

    <prefix>.cmd.<service>.p<partition>.<workspace_sid>.<action>

The workflow-router then reads events from its own work-queue stream
(`<PREFIX>_ROUTING`) that sources the event stream and adds the partition:

    <prefix>.routing.<partition>.<account_sid>.<workspace_sid>.<resource_sid>.<type>

Partition leases and member announcements live in the KV bucket `<PREFIX>_LEASES`.
Readiness pings: `<prefix>.ping.<service>`.
Gateway replicas broadcast credential changes and rate-limit counts to each other
on `<prefix>.gateway.credentials-changed` and `<prefix>.gateway.rate-counts`.
"""

from __future__ import annotations

from dataclasses import dataclass


GATEWAY = "gateway"
WORKFLOW_ROUTER = "workflow-router"
QUEUE_DISPATCHER = "queue-dispatcher"
STATISTICS = "statistics"
EVENTS = "events"
SERVICES = (GATEWAY, WORKFLOW_ROUTER, QUEUE_DISPATCHER, STATISTICS, EVENTS)
# Services whose commands go to the replica owning the workspace's partition.
PARTITIONED_COMMANDS = (QUEUE_DISPATCHER,)


def _token(value: str) -> str:
    if not value or any(c in value for c in " .*>\t\r\n"):
        raise ValueError(f"not a valid subject token: {value!r}")
    return value


@dataclass(frozen=True)
class Subjects:
    """Subject names under one prefix (default `taskrouter`)."""

    prefix: str = "taskrouter"

    # -- events ---------------------------------------------------------------
    @property
    def event_stream(self) -> str:
        """Name of the JetStream stream keeping the events."""
        return f"{self.prefix.upper().replace('-', '_')}_EVENTS"

    @property
    def event_stream_subjects(self) -> list[str]:
        return [f"{self.prefix}.events.>"]

    def event(
        self, account_sid: str, workspace_sid: str, resource_sid: str, event_type: str
    ) -> str:
        """The subject one event is published on."""
        parts = [_token(account_sid), _token(workspace_sid), _token(resource_sid)]
        types = [_token(part) for part in event_type.split(".")]
        return ".".join([self.prefix, "events", *parts, *types])

    def events_matching(
        self,
        account_sid: str = "*",
        workspace_sid: str = "*",
        resource_sid: str = "*",
        event_type: str = ">",
    ) -> str:
        """A subscription subject; `event_type` may end in `>` (`reservation.>`)."""
        return ".".join(
            [self.prefix, "events", account_sid, workspace_sid, resource_sid, event_type]
        )

    # -- commands -------------------------------------------------------------
    def command(self, service: str, action: str, workspace_sid: str = "_") -> str:
        """Request subject of `action` on `service` for one workspace."""
        return f"{self.prefix}.cmd.{service}.{_token(workspace_sid)}.{action}"

    def command_listener(self, service: str, action: str) -> str:
        """Subject a service subscribes to for `action`, for every workspace."""
        return f"{self.prefix}.cmd.{service}.*.{action}"

    def partitioned_command(
        self, service: str, action: str, workspace_sid: str, partition: int
    ) -> str:
        """Request subject of `action` when `service` is partitioned by workspace."""
        return (
            f"{self.prefix}.cmd.{service}.p{partition}.{_token(workspace_sid)}.{action}"
        )

    def partition_command_listener(self, service: str, partition: int) -> str:
        """Subject the owner of `partition` subscribes to: all actions and workspaces.

        Actions contain dots (`worker.create`), hence the `>`.
        """
        return f"{self.prefix}.cmd.{service}.p{partition}.*.>"

    def partitioned_action(self, service: str, subject: str) -> str:
        """The action of a partitioned command subject (see `partitioned_command`)."""
        head = f"{self.prefix}.cmd.{service}."
        if not subject.startswith(head):
            raise ValueError(f"not a command subject of {service}: {subject!r}")
        _partition, _workspace, action = subject[len(head) :].split(".", 2)
        return action

    # -- partitions -------------------------------------------------------------
    @property
    def lease_bucket(self) -> str:
        """KV bucket of partition leases and member announcements."""
        return f"{self.prefix.upper().replace('-', '_')}_LEASES"

    @property
    def routing_stream(self) -> str:
        """Work-queue stream of the workflow-router's events, with partition tokens."""
        return f"{self.prefix.upper().replace('-', '_')}_ROUTING"

    def routing_transform(self, partitions: int) -> tuple[str, str]:
        """Source and destination of the transform adding the partition token."""
        source = f"{self.prefix}.events.*.*.>"
        destination = (
            f"{self.prefix}.routing.{{{{partition({partitions},2)}}}}"
            ".{{wildcard(1)}}.{{wildcard(2)}}.>"
        )
        return source, destination

    def routing_events(self, partition: int) -> str:
        """Filter of one partition's events in the routing stream."""
        return f"{self.prefix}.routing.{partition}.>"

    def ping(self, service: str) -> str:
        return f"{self.prefix}.ping.{service}"

    # -- gateway replicas (core NATS broadcasts, no queue group, no stream) ---
    def credentials_changed(self) -> str:
        """Broadcast when an account's token or an API key changes (e.g. revoked).

        Every gateway replica drops the cached credentials named in the message.
        """
        return f"{self.prefix}.gateway.credentials-changed"

    def rate_counts(self) -> str:
        """Broadcast of one gateway replica's request counts, for shared rate limits."""
        return f"{self.prefix}.gateway.rate-counts"
