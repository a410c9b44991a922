"""The per-operation suite has exactly one test for each of the contract's 61
operations, read from the `@operation(...)` decorators of its source files."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

from tests.e2e.operations.recorder import documented_parameters, operation_ids, routes

HERE = Path(__file__).parent


def declared_operations() -> Counter[str]:
    """Operation ids named by `@operation("...")` in this folder's test files."""
    found: Counter[str] = Counter()
    for path in sorted(HERE.glob("test_ops_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef):
                continue
            for decorator in node.decorator_list:
                if (
                    isinstance(decorator, ast.Call)
                    and getattr(decorator.func, "id", "") == "operation"
                ):
                    found[decorator.args[0].value] += 1  # type: ignore[attr-defined]
    return found


def test_every_contract_operation_has_exactly_one_test():
    declared = declared_operations()
    assert len(operation_ids()) == 61
    assert set(declared) == operation_ids(), {
        "untested": sorted(operation_ids() - set(declared)),
        "not in the contract": sorted(set(declared) - operation_ids()),
    }
    assert [op for op, n in declared.items() if n > 1] == []


def test_literal_paths_are_matched_before_sid_paths():
    by_id = {r.operation_id: r for r in routes()}
    assert documented_parameters("ListTaskQueuesStatistics") >= {
        "FriendlyName",
        "PageToken",
    }
    ordered = [r.operation_id for r in routes()]
    assert ordered.index("ListTaskQueuesStatistics") < ordered.index("FetchTaskQueue")
    assert by_id["FetchWorkersRealTimeStatistics"].pattern.match(
        "/v1/Workspaces/WS1/Workers/RealTimeStatistics"
    )
