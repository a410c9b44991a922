"""Fixtures of the dispatcher's decision tests: a pure in-memory workspace."""

from __future__ import annotations

import pytest
from dispatch_world import World, make_config


@pytest.fixture
def world() -> World:
    return World(make_config())


@pytest.fixture
def single_world() -> World:
    return World(make_config(multi_task=False))
