"""One test per operation of the contract: `@operation("ListTask")` marks it.

The decorated test must take the `api` fixture. After its body ran, the test
also proves that every documented parameter of its operation was sent at
least once in this session and that one call succeeded. The meta-test in
`test_ops_registry.py` reads these decorators from the source files and
compares them with the contract's 61 operations.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any


def operation(
    operation_id: str,
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    def mark(test: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(test)
        def checked(*args: Any, **kwargs: Any) -> None:
            test(*args, **kwargs)
            kwargs["api"].recorder.calls.assert_parameters_covered(operation_id)

        checked.operation_id = operation_id  # type: ignore[attr-defined]
        return checked

    return mark
