"""Every REST route of the gateway, registered in an order where literal path
segments (`/TaskQueues/Statistics`, `/Workers/RealTimeStatistics`) come before
the routes that would read them as SIDs."""

from __future__ import annotations

from fastapi import FastAPI

from services.gateway.routes import (
    activities,
    task_channels,
    task_queues,
    workflows,
    workspaces,
)


def register_routes(app: FastAPI) -> None:
    for module in (workspaces, activities, task_channels, task_queues, workflows):
        app.include_router(module.router)
