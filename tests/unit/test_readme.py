"""The README stays true: every setting a service reads is documented there."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import AliasChoices

from services.events.settings import EventsSettings
from services.gateway.settings import GatewaySettings
from services.queue_dispatcher.settings import DispatcherSettings
from services.statistics.settings import StatisticsSettings
from services.workflow_router.settings import RouterSettings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
SETTINGS = [GatewaySettings, RouterSettings, DispatcherSettings, StatisticsSettings, EventsSettings]


def _variables() -> set[str]:
    names = set()
    for cls in SETTINGS:
        for field in cls.model_fields.values():
            alias = field.validation_alias
            if isinstance(alias, AliasChoices):
                names.add(str(alias.choices[0]))
    return names


@pytest.mark.parametrize("variable", sorted(_variables()))
def test_every_setting_is_documented_in_the_readme(variable):
    short = variable.replace("TASKROUTER_WEBHOOK_", "…_") if "TIMEOUT_MS" in variable else variable
    assert f"`{variable}`" in README or f"`{short}`" in README or variable in README, variable


def test_readme_shows_the_two_commands_and_the_subject_scheme():
    assert "make run" in README and "make test" in README
    assert "taskrouter.events.<account_sid>.<workspace_sid>.<resource_sid>.<event_type>" in README
