"""`python -m services.queue_dispatcher`"""

from services.queue_dispatcher.app import build
from services.queue_dispatcher.settings import DispatcherSettings
from shared.logging import configure_logging
from shared.runtime import run
from shared.settings import load


async def main() -> None:
    settings = load(DispatcherSettings)
    configure_logging("queue-dispatcher", settings.log_level, settings.log_format)
    runtime, _ = build(settings)
    await runtime.serve_forever()


if __name__ == "__main__":
    run(main)
