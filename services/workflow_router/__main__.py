"""`python -m services.workflow_router`"""

from services.workflow_router.app import build
from services.workflow_router.settings import RouterSettings
from shared.logging import configure_logging
from shared.runtime import run
from shared.settings import load


async def main() -> None:
    settings = load(RouterSettings)
    configure_logging("workflow-router", settings.log_level, settings.log_format)
    runtime, _ = build(settings)
    await runtime.serve_forever()


if __name__ == "__main__":
    run(main)
