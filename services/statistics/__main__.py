"""`python -m services.statistics`"""

from services.statistics.app import build
from services.statistics.settings import StatisticsSettings
from shared.logging import configure_logging
from shared.runtime import run
from shared.settings import load
from shared.subjects import STATISTICS


async def main() -> None:
    settings = load(StatisticsSettings)
    configure_logging(STATISTICS, settings.log_level, settings.log_format)
    service = build(settings)
    await service.runtime.serve_forever()


if __name__ == "__main__":
    run(main)
