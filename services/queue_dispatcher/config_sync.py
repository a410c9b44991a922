"""Following configuration changes made by the gateway (workspace, activities, ...).

On a configuration event the dispatcher reloads the workspace's configuration
and calls `apply_configuration`, which brings workers in line and re-runs
matching where the change may have made new matches possible:

- a queue's TargetWorkers or order changed → membership and order rebuilt,
  its waiting tasks matched again;
- a task channel added → every worker gets a channel for it (capacity 1);
- an activity renamed → workers in it carry the new name;
- multitasking switched on → readiness of every worker recomputed.
"""

from __future__ import annotations

from services.queue_dispatcher.state import WorkspaceState
from services.queue_dispatcher.unit import Unit
from services.queue_dispatcher.worker_ops import new_channel
from shared.config_view import WorkspaceConfig


def apply_configuration(unit: Unit, config: WorkspaceConfig) -> None:
    """Adopt `config` for the workspace and reconcile workers and indexes with it."""
    state = unit.state
    multi_task_before = state.multi_task
    state.config = config
    _reconcile_workers(unit, state)

    changed_queues = state.index.sync_queues()
    if changed_queues or multi_task_before != state.multi_task:
        for worker in state.workers.values():
            state.index.refresh_worker(worker)
            unit.match_worker(worker.sid)
    for queue_sid in changed_queues:
        for task_sid in state.index.waiting_in_queue(queue_sid):
            unit.match_task(task_sid)


# TODO: channels of a deleted task channel stay on the workers (unused, holding
# no capacity); only additions and activity renames are followed.
def _reconcile_workers(unit: Unit, state: WorkspaceState) -> None:
    channels = state.config.channels
    activities = state.config.activities
    for worker in state.workers.values():
        model = worker.model
        have = {ch.task_channel_sid for ch in model.channels}
        missing = [ch for sid, ch in channels.items() if sid not in have]
        activity = activities.get(model.activity_sid)
        renamed = activity is not None and activity.friendly_name != model.activity_name
        if not missing and not renamed:
            continue
        unit.changed(worker)
        model.channels.extend(new_channel(worker.sid, ch, unit) for ch in missing)
        if renamed and activity is not None:
            model.activity_name = activity.friendly_name
        state.index.refresh_worker(worker)
        unit.match_worker(worker.sid)
