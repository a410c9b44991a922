"""The event stream's configuration follows the settings."""

from __future__ import annotations

from nats.js.api import StorageType

from shared.bus import event_stream_config
from shared.settings import CommonSettings, load


def test_event_stream_has_one_replica_by_default():
    config = event_stream_config(load(CommonSettings, {}))

    assert config.num_replicas == 1
    assert config.storage == StorageType.FILE


def test_event_stream_replicas_come_from_the_environment():
    settings = load(CommonSettings, {"TASKROUTER_EVENT_STREAM_REPLICAS": "3"})

    assert event_stream_config(settings).num_replicas == 3
