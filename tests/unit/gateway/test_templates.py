from datetime import UTC, datetime

from services.gateway.templates import new_workspace

NOW = datetime(2024, 1, 1, tzinfo=UTC)


def test_none_template_has_activities_and_channels_only():
    created = new_workspace("AC" + "0" * 32, "w", NOW)
    assert [a.friendly_name for a in created.activities] == ["Offline", "Available", "Unavailable"]
    assert [c.unique_name for c in created.channels] == ["default", "voice", "chat", "sms", "video"]
    assert created.queues == [] and created.workflows == []
    assert created.workspace.default_activity_sid == created.activities[0].sid


def test_creation_order_survives_sorting_by_date():
    created = new_workspace("AC" + "0" * 32, "w", NOW, template="FIFO")
    ordered = sorted(created.channels, key=lambda c: (c.date_created, c.sid))
    assert ordered == created.channels
    assert created.workflows[0].task_reservation_timeout == 120
