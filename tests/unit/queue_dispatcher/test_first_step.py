"""The first workflow step taken while the task is created (no router round trip)."""

from __future__ import annotations

from datetime import timedelta

import orjson
from dispatch_world import START, WORKFLOW, World

from services.queue_dispatcher import task_ops
from shared.commands import CreateTask
from shared.workflow_routing import workflow_version


def _configure(world: World, configuration: dict) -> None:
    workflow = world.state.config.workflows[WORKFLOW]
    workflow.configuration = orjson.dumps(configuration).decode()
    workflow.date_updated = START + timedelta(seconds=len(world.units))


def _create(world: World, attributes: dict, **fields) -> task_ops.TaskState:
    world.tick(1)
    command = world.command(
        CreateTask,
        attributes=orjson.dumps(attributes).decode(),
        workflow_sid=WORKFLOW,
        **fields,
    )
    return world.decide(lambda unit: task_ops.create_task(unit, command))


def _sales_then_default(world: World) -> tuple[str, str]:
    sales, general = world.add_queue(1), world.add_queue(2)
    _configure(
        world,
        {
            "task_routing": {
                "filters": [
                    {
                        "filter_friendly_name": "Sales",
                        "expression": "type == 'sales'",
                        "targets": [{"queue": sales, "priority": 7, "timeout": 30}],
                    }
                ],
                "default_filter": {"queue": general},
            }
        },
    )
    return sales, general


def test_plain_first_step_is_taken_at_creation_and_offered(world: World):
    sales, _ = _sales_then_default(world)
    alice = world.worker("alice")

    task = _create(world, {"type": "sales"})

    assert task.model.task_queue_sid == sales
    assert task.model.task_queue_entered_date == world.now
    assert task.model.priority == 7
    assert task.step is not None
    assert (task.step.seq, task.step.step_key) == (1, f"{task.sid}:1")
    assert world.offered(task) == ["alice"]
    events = world.units[-1].events
    assert [e.event_type for e in events] == [
        "task.created",
        "workflow.entered",
        "workflow.target-matched",
        "task-queue.entered",
        "reservation.created",
    ]
    created, _, matched, entered, _ = events
    assert created.event_data["task_queue_sid"] == sales
    # The version of the workflow the step was chosen with, for the router's check.
    chosen_with = world.state.config.workflows[WORKFLOW].date_updated
    assert created.event_data["workflow_date_updated"] == str(workflow_version(chosen_with))
    assert matched.event_data["workflow_filter_name"] == "Sales"
    assert matched.event_data["workflow_filter_target_index"] == "0"
    assert matched.event_data["task_queue_sid"] == sales
    assert entered.actor_type == "workspace"  # the system, not the API caller
    assert alice.sid in task.pending.values()


def test_default_filter_is_taken_too(world: World):
    _, general = _sales_then_default(world)

    task = _create(world, {"type": "billing"})

    assert task.model.task_queue_sid == general
    matched = world.units[-1].events[2]
    assert matched.event_data["workflow_filter_name"] == "Default Filter"


def test_the_routers_task_route_for_step_one_changes_nothing(world: World):
    sales, _ = _sales_then_default(world)
    task = _create(world, {"type": "sales"})

    outcome = world.route(task, sales, seq=1)

    assert outcome == "waiting"
    assert world.last_events() == []
    assert task.model.task_queue_sid == sales


def test_a_step_with_skip_if_is_left_to_the_router(world: World):
    queue = world.add_queue(1)
    _configure(
        world,
        {
            "task_routing": {
                "filters": [],
                "default_filter": {"queue": queue, "skip_if": "workers.available == 0"},
            }
        },
    )

    task = _create(world, {})

    assert task.model.task_queue_sid is None
    assert task.step is None
    assert world.last_events() == ["task.created"]


def test_a_workflow_older_than_the_gateways_is_not_used(world: World):
    sales, _ = _sales_then_default(world)
    newer = world.state.config.workflows[WORKFLOW].date_updated + timedelta(seconds=1)

    task = _create(world, {"type": "sales"}, workflow_date_updated=newer)

    assert task.model.task_queue_sid is None
    assert world.last_events() == ["task.created"]


def test_a_task_routed_straight_to_a_queue_is_left_to_the_router(world: World):
    sales, general = _sales_then_default(world)

    task = _create(world, {"type": "sales"}, routing_target=general)

    assert task.model.task_queue_sid is None
    assert world.last_events() == ["task.created"]


def test_a_first_step_into_an_unknown_queue_is_left_to_the_router(world: World):
    _configure(
        world,
        {"task_routing": {"filters": [], "default_filter": {"queue": "WQ" + "f" * 32}}},
    )

    task = _create(world, {})

    assert task.model.task_queue_sid is None
    assert world.last_events() == ["task.created"]
