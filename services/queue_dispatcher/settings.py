"""Settings of the queue-dispatcher."""

from pydantic import AliasChoices, Field

from shared.settings import CommonSettings


class DispatcherSettings(CommonSettings):
    """Common settings plus how many commands one subscriber handles at once."""

    command_concurrency: int = Field(
        64,
        validation_alias=AliasChoices(
            "DISPATCHER_COMMAND_CONCURRENCY", "command_concurrency"
        ),
        description="Commands of one action handled concurrently (they wait on commits).",
    )
