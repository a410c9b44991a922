"""Settings of the queue-dispatcher (only the common ones so far)."""

from shared.settings import CommonSettings


class DispatcherSettings(CommonSettings):
    """The queue-dispatcher reads nothing beyond the common settings."""
