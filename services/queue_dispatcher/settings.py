"""Settings of the queue-dispatcher."""

from pydantic import AliasChoices, Field

from shared.settings import CommonSettings


class DispatcherSettings(CommonSettings):
    """Common settings plus command concurrency and the idle checkpoint interval."""

    command_concurrency: int = Field(
        64,
        validation_alias=AliasChoices(
            "DISPATCHER_COMMAND_CONCURRENCY", "command_concurrency"
        ),
        description="Commands of one action handled concurrently (they wait on commits).",
    )
    finished_task_retention_seconds: float = Field(
        300.0,
        ge=0,
        validation_alias=AliasChoices(
            "DISPATCHER_FINISHED_TASK_RETENTION_SECONDS", "finished_task_retention_seconds"
        ),
        description=(
            "Completed and canceled tasks are deleted this long after their last "
            "change (TaskRouter: 5 minutes); 0 keeps them."
        ),
    )
    idle_checkpoint_seconds: float = Field(
        5.0,
        gt=0,
        validation_alias=AliasChoices(
            "DISPATCHER_IDLE_CHECKPOINT_SECONDS", "idle_checkpoint_seconds"
        ),
        description=(
            "How often each workspace's workers' last offer times are written; "
            "a restart reads the reservations created since the last one."
        ),
    )
