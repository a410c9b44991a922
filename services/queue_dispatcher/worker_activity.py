"""Changing a worker's activity, with the `worker.activity.update` event."""

from __future__ import annotations

from services.queue_dispatcher.state import WorkerState, ms
from services.queue_dispatcher.unit import Unit
from shared.events import worker_data
from shared.models import Activity


def set_activity(unit: Unit, worker: WorkerState, activity: Activity) -> bool:
    """Move `worker` to `activity`; False when it is already there.

    The event carries the previous activity and the time spent in it, in whole
    seconds and in milliseconds (events.md §4).
    """
    model = worker.model
    if model.activity_sid == activity.sid:
        return False
    unit.changed(worker)
    previous_sid, previous_name = model.activity_sid, model.activity_name
    elapsed = max(0, ms(unit.now) - ms(model.date_status_changed))
    model.activity_sid = activity.sid
    model.activity_name = activity.friendly_name
    model.available = activity.available
    model.date_status_changed = unit.now
    worker.changed()
    unit.state.index.refresh_worker(worker)

    data = {
        **worker_data(model),
        "worker_previous_activity_sid": previous_sid,
        "worker_previous_activity_name": previous_name,
        "worker_time_in_previous_activity": str(elapsed // 1000),
        "worker_time_in_previous_activity_ms": str(elapsed),
    }
    unit.emit(
        "worker.activity.update",
        resource_type="worker",
        resource_sid=model.sid,
        data=data,
        description=f"Worker {model.friendly_name} updated to {activity.friendly_name} Activity",
    )
    if activity.available:
        unit.match_worker(worker.sid)
    return True
