"""Every REST route of the gateway, registered in an order where literal path
segments (`/TaskQueues/Statistics`, `/Workers/RealTimeStatistics`) come before
the routes that would read them as SIDs."""

from __future__ import annotations

from fastapi import FastAPI

from services.gateway.routes import (
    activities,
    events,
    reservations,
    statistics,
    task_channels,
    task_queues,
    tasks,
    workers,
    workflows,
    workspaces,
)

# Statistics first: its literal segments must win over `/{sid}` routes.
# Starlette tries routes in order; tasks come early because they are the busiest.
ROUTERS = (
    statistics, tasks, workspaces, activities, task_channels, task_queues, workflows,
    workers, reservations, events,
)


def register_routes(app: FastAPI) -> None:
    for module in ROUTERS:
        app.include_router(module.router)
