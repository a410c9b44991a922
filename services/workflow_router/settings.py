"""Settings of the workflow-router (only the common ones so far)."""

from shared.settings import CommonSettings


class RouterSettings(CommonSettings):
    """The workflow-router reads nothing beyond the common settings."""
