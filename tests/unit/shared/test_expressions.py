"""The expression engine against expressions.md §6 and its edge rules.

Every evaluation passes a fixed `NOW` (Saturday 2024-06-01 18:30:05 UTC) so the
time identifiers are deterministic.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.expressions import (
    MAX_DEPTH,
    MAX_LENGTH,
    ExpressionError,
    ExpressionKind,
    compile_expression,
    compile_path,
    parse_order_by,
)

Q = ExpressionKind.WORKER
F = ExpressionKind.TASK
R = ExpressionKind.TARGET
S = ExpressionKind.SKIP_IF
L = ExpressionKind.WORKER_LIST

NOW = datetime(2024, 6, 1, 18, 30, 5, tzinfo=timezone.utc)  # a Saturday

WORKER_SID = "WK" + "0123456789abcdef" * 2
ACTIVITY_SID = "WA" + "11112222333344445555666677778888"
BUSY_SID = "WA" + "ffffeeeeddddccccbbbbaaaa99998888"

T = {
    "type": "support",
    "language": "en",
    "score": 7.5,
    "callback": True,
    "escalations": 0,
    "subject": "Refund for order 1234",
    "requested_agent": "agent01",
    "preferred_agents": ["agent01", "agent04"],
    "customer": {"tier": "gold", "region": "emea", "tags": ["vip", "billing"]},
}

W = {
    "skills": ["support", "sales"],
    "languages": ["en", "es"],
    "level": 3,
    "agent_id": "agent01",
    "region": "emea",
    "on_break": False,
    "name": "Alice Smith",
    "routing": {"levels": {"billing": 4}},
}

BUILT_INS = {
    "sid": WORKER_SID,
    "friendly_name": "Alice",
    "activity_sid": ACTIVITY_SID,
    "activity_name": "Available",
}

WORKER_DOCUMENT = {
    **W,
    **BUILT_INS,
    "channel": {
        "voice": {
            "assigned_tasks": 1,
            "configured_capacity": 2,
            "available": True,
            "available_capacity_percentage": 50,
        }
    },
}

DEFAULT_DOCUMENTS: dict[ExpressionKind, dict[str, Any]] = {
    Q: W,
    F: T,
    R: {"task": T, "worker": WORKER_DOCUMENT},
    S: {"workers": {"available": 0, "unavailable": 3, ACTIVITY_SID: 2}},
    L: {**W, **BUILT_INS},
}

ODD_KEYS = {
    "android": "yes",
    "index": 1,
    "order_id": "o-1",
    "nullable": True,
    "truex": 1,
    "hasty": 2,
    "contains_x": "x",
    "_private": 1,
    "level2": 1,
    "Level": 9,
}


def case(id_: str, kind: ExpressionKind, text: str, expected: bool, document=None):
    """One table row; the document defaults to the one §6 uses for `kind`."""
    if document is None:
        document = DEFAULT_DOCUMENTS[kind]
    return pytest.param(kind, text, document, expected, id=id_)


WORKED_EXAMPLES = [
    case("ex01-constant-true", Q, "1==1", True),
    case("ex02-constant-false", Q, "1 == 2", False),
    case("ex03-has-present", Q, "skills HAS 'support'", True),
    case("ex04-has-absent", Q, 'skills HAS "billing"', False),
    case("ex05-ge", Q, "level >= 3", True),
    case("ex06-gt", Q, "level > 3", False),
    case("ex07-constant-left-in", Q, "'es' IN languages", True),
    case("ex08-in-array-literal", Q, "region IN ['emea', 'apac']", True),
    case("ex09-not-in", Q, "region NOT IN ['emea']", False),
    case("ex10-nested-path", Q, "routing.levels.billing > 3", True),
    case("ex11-missing-nested", Q, "routing.levels.payments > 3", False),
    case("ex12-index", Q, "languages[1] == 'es'", True),
    case("ex13-bool-literal", Q, "on_break == false", True),
    case("ex14-scalar-op-on-array", Q, "skills == 'support'", False),
    case("ex15-array-op-on-scalars", Q, "level HAS 3", False),
    case("ex15b-not-equal-on-array", Q, "skills != 'support'", False),
    case("ex16-contains", Q, "name CONTAINS 'Smith'", True),
    case(
        "ex17-or-right-true",
        Q,
        "(skills HAS 'sales' AND level > 5) OR region == 'emea'",
        True,
    ),
    case(
        "ex18-and-of-or",
        Q,
        "skills HAS 'sales' AND (level > 5 OR region == 'apac')",
        False,
    ),
    case("ex19-lowercase-keywords", Q, "skills has 'sales' and level < 4", True),
    case("ex20-filter-and", F, "type == 'support' AND customer.tier == 'gold'", True),
    case("ex21-filter-nested-has", F, "customer.tags HAS 'vip'", True),
    case("ex22-decimal-vs-int", F, "score >= 7", True),
    case("ex23-in-and-bool", F, "language IN ['en', 'es'] AND callback == true", True),
    case("ex24-array-not-null", F, "preferred_agents != null", True),
    case("ex25-missing-is-null", F, "vip_code == null", True),
    case("ex26-missing-not-equal", F, "vip_code != 'X1'", True),
    case("ex27-missing-equal", F, "vip_code == 'X1'", False),
    case("ex28-number-vs-string", F, "escalations == '0'", False),
    case("ex29-contains", F, "subject CONTAINS 'Refund'", True),
    case("ex30-case-sensitive", F, "customer.tier == 'Gold'", False),
    case("ex31-task-in-worker", R, "task.language IN worker.languages", True),
    case("ex32-worker-has-task", R, "worker.skills HAS task.type", True),
    case("ex33-task-eq-worker", R, "task.requested_agent == worker.agent_id", True),
    case("ex34-worker-in-task", R, "worker.agent_id IN task.preferred_agents", True),
    case(
        "ex35-two-sides",
        R,
        "task.customer.region == worker.region AND worker.level >= 2",
        True,
    ),
    case(
        "ex36-built-in", R, "worker.activity_name IN ['Available', 'High Value']", True
    ),
    case("ex37-exact-name", R, "worker.friendly_name == 'alice'", False),
    case("ex38-unprefixed-is-null", R, "language == 'en'", False),
    case("ex40-day-of-week", F, "taskrouter.dayOfWeek IN ['Sat','Sun']", True),
]

LEXICAL = [
    case("lone-equals-constant", Q, "1 = 1", True),
    case("lone-equals-path", Q, "level = 3", True),
    case("int-equals-float", Q, "1==1.0", True),
    case("decimal-gt-int", Q, "1.5 > 1", True),
    case("leading-zeros", Q, "0800 == 800", True),
    case("leading-zeros-path", Q, "level == 003", True),
    case("negative-literal", Q, "-1 < 0", True),
    case("negative-on-right", Q, "level > -5", True),
    case("single-vs-double-quotes", Q, "'a' == \"a\"", True),
    case("double-quoted-with-space", Q, 'name == "Alice Smith"', True),
    case("escaped-single-quote", Q, r"""'it\'s' == "it's" """, True),
    case("escaped-double-quote", Q, r"""'say "hi"' == "say \"hi\"" """, True),
    case("escaped-backslash", Q, r"p == 'a\\b'", True, {"p": "a\\b"}),
    case("unknown-escape-kept", Q, r"p == 'C:\temp'", True, {"p": "C:\\temp"}),
    case("quote-in-value", Q, r"quote == 'it\'s'", True, {"quote": "it's"}),
    case("no-spaces", Q, "level>=3", True),
    case("extra-spaces", Q, "   level   >=   3   ", True),
    case("newlines-and-tabs", Q, "level\n>=\t3\nAND\nregion == 'emea'", True),
    case("upper-true", Q, "on_break == FALSE", True),
    case("mixed-case-null", Q, "vip == NuLl", True),
    case("constant-true-true", Q, "true == true", True),
    case("constant-null-null", Q, "null == null", True),
    case("constant-null-not-null", Q, "null != null", False),
    case("has-mixed-case", Q, "skills HaS 'sales'", True),
    case("in-mixed-case", Q, "'en' In languages", True),
    case("not-in-mixed-case", Q, "region Not In ['apac']", True),
    case("contains-lower", Q, "name contains 'Ali'", True),
    case("or-mixed-case", Q, "level > 5 Or level < 4", True),
    case("and-mixed-case", Q, "level > 1 AnD level < 5", True),
    case("key-starting-with-and", Q, "android == 'yes'", True, ODD_KEYS),
    case("key-starting-with-in", Q, "index == 1", True, ODD_KEYS),
    case("key-starting-with-or", Q, "order_id == 'o-1'", True, ODD_KEYS),
    case("key-starting-with-null", Q, "nullable == true", True, ODD_KEYS),
    case("key-starting-with-true", Q, "truex == 1", True, ODD_KEYS),
    case("key-starting-with-has", Q, "hasty == 2", True, ODD_KEYS),
    case("key-starting-with-contains", Q, "contains_x == 'x'", True, ODD_KEYS),
    case("underscore-key", Q, "_private == 1", True, ODD_KEYS),
    case("digit-in-key", Q, "level2 == 1", True, ODD_KEYS),
    case("keys-case-sensitive", Q, "Level == 3", False),
    case("keyword-inside-path", Q, "a.in == 1", True, {"a": {"in": 1}}),
]

PATHS_AND_ARRAYS = [
    case("index-zero", Q, "languages[0] == 'en'", True),
    case("index-out-of-range-null", Q, "languages[2] == null", True),
    case("index-out-of-range-not-equal", Q, "languages[5] != 'x'", True),
    case("deep-path-equal", Q, "routing.levels.billing == 4", True),
    case("object-is-not-null", Q, "routing.levels == null", False),
    case("object-present", Q, "routing.levels != null", True),
    case("object-eq-string", Q, "routing == 'x'", False),
    case("object-ne-string", Q, "routing != 'x'", False),
    case("object-ordering", Q, "routing.levels > 3", False),
    case("index-on-scalar-null", Q, "level[0] == null", True),
    case("index-on-scalar-no-match", Q, "level[0] == 3", False),
    case("key-on-array-null", Q, "skills.first == null", True),
    case("key-on-string-null", Q, "name.first == null", True),
    case("index-on-object-null", Q, "routing[0] == null", True),
    case("nested-array-index", Q, "m[1][0] == 3", True, {"m": [[1, 2], [3]]}),
    case("has-on-nested-array", Q, "m[0] HAS 2", True, {"m": [[1, 2], [3]]}),
    case("has-array-element", Q, "m HAS 3", False, {"m": [[1, 2], [3]]}),
    case(
        "object-in-array", Q, "agents[0].id == 'a1'", True, {"agents": [{"id": "a1"}]}
    ),
    case(
        "has-object-elements", Q, "agents HAS 'a1'", False, {"agents": [{"id": "a1"}]}
    ),
    case("has-case-sensitive", Q, "skills HAS 'SALES'", False),
    case("constant-array-has", Q, "[1, 2] HAS 1", True),
    case("constant-array-has-path", Q, "['x', 3] HAS level", True),
    case("in-present", Q, "'support' IN skills", True),
    case("in-absent", Q, "'billing' IN skills", False),
    case("array-in-array", Q, "skills IN ['support']", False),
    case("number-in-numbers", Q, "level IN [1, 2, 3]", True),
    case("number-in-floats", Q, "level IN [1.0, 3.0]", True),
    case("number-in-strings", Q, "level IN ['3']", False),
    case("number-not-in-numbers", Q, "level NOT IN [1, 2]", True),
    case("number-not-in-strings", Q, "level NOT IN ['3']", True),
    case("number-in-mixed", Q, "level IN ['x', 3]", True),
    case("bool-in-bools", Q, "on_break IN [false]", True),
    case("bool-not-in-numbers", Q, "on_break IN [0]", False),
    case("number-not-in-bools", Q, "level IN [true]", False),
    case("missing-in", Q, "vip IN ['a']", False),
    case("missing-not-in", Q, "vip NOT IN ['a']", True),
    case("missing-has", Q, "vip HAS 'a'", False),
    case("array-not-in", Q, "skills NOT IN ['support']", False),
    case("not-in-scalar-right", Q, "region NOT IN 'emea'", False),
    case("in-scalar-right", Q, "region IN 'emea'", False),
    case("in-empty-array", Q, "region IN []", False),
    case("not-in-empty-array", Q, "region NOT IN []", True),
    case("has-null", Q, "skills HAS null", False),
    case("null-in-array-with-null", Q, "x IN [null]", False, {}),
    case("has-int-in-mixed", Q, "nums HAS 1", True, {"nums": [1, 2.5, True]}),
    case("has-bool-in-mixed", Q, "nums HAS true", True, {"nums": [1, 2.5, True]}),
    case("has-float", Q, "nums HAS 2.5", True, {"nums": [1, 2.5, True]}),
    case("has-number-vs-bool", Q, "flags HAS 1", False, {"flags": [True]}),
    case("has-int-vs-float", Q, "nums HAS 1", True, {"nums": [1.0]}),
    case("has-string-vs-number", Q, "nums HAS '1'", False, {"nums": [1]}),
    case(
        "in-path-array-path-scalar",
        Q,
        "region IN regions",
        True,
        {"region": "a", "regions": ["a"]},
    ),
    case("string-has-on-tuple", Q, "t HAS 'a'", True, {"t": ("a", "b")}),
]

SCALAR_OPERATORS = [
    case("has-on-string", Q, "name HAS 'Alice Smith'", False),
    case("has-on-bool", Q, "on_break HAS false", False),
    case("has-on-object", Q, "routing HAS 'levels'", False),
    case("contains-case-sensitive", Q, "name CONTAINS 'smith'", False),
    case("contains-empty", Q, "name CONTAINS ''", True),
    case("contains-on-array", Q, "skills CONTAINS 'sup'", False),
    case("contains-on-number", Q, "level CONTAINS '3'", False),
    case("contains-missing", Q, "vip CONTAINS 'x'", False),
    case("contains-constant-left", Q, "'Alice Smith Jr' CONTAINS name", True),
    case("contains-number-right", Q, "name CONTAINS 3", False),
    case("string-gt", Q, "name > 'A'", True),
    case("string-lt", Q, "name < 'B'", True),
    case("string-ge-equal", Q, "region >= 'emea'", True),
    case("string-constants-ordered", Q, "'b' > 'a'", True),
    case("string-vs-number-ordering", Q, "region > 1", False),
    case("bools-not-ordered", Q, "true > false", False),
    case("number-le", Q, "level <= 3", True),
    case("number-lt-float", Q, "level < 3.5", True),
    case("constant-left-ordering", Q, "5 > level", True),
    case("constant-left-ordering-false", Q, "3 > level", False),
    case("path-vs-path-ordering", Q, "a > b", True, {"a": 2, "b": 1.5}),
]

NULLS_AND_TYPES = [
    case("missing-eq-null", Q, "vip == null", True),
    case("missing-ne-null", Q, "vip != null", False),
    case("missing-gt", Q, "vip > 1", False),
    case("missing-lt", Q, "vip < 1", False),
    case("missing-ge-zero", Q, "vip >= 0", False),
    case("missing-eq-zero", Q, "vip == 0", False),
    case("missing-ne-zero", Q, "vip != 0", True),
    case("missing-eq-false", Q, "vip == false", False),
    case("missing-ne-false", Q, "vip != false", True),
    case("json-null-eq-null", Q, "x == null", True, {"x": None}),
    case("json-null-ne-string", Q, "x != 'a'", True, {"x": None}),
    case("missing-deep-null", Q, "a.b.c == null", True),
    case("missing-eq-missing", Q, "a == b", True),
    case("missing-ne-missing", Q, "a != b", False),
    case("null-ne-array-path", Q, "vip != skills", True),
    case("number-eq-string", Q, "level == '3'", False),
    case("number-ne-string", Q, "level != '3'", True),
    case("number-gt-string", Q, "level > '2'", False),
    case("string-const-eq-number-const", Q, "'3' == 3", False),
    case("bool-eq-zero", Q, "on_break == 0", False),
    case("bool-ne-zero", Q, "on_break != 0", True),
    case("bool-lt-one", Q, "on_break < 1", False),
    case("bool-eq-string", Q, "on_break == 'false'", False),
    case("number-eq-true", Q, "level == true", False),
    case("true-eq-one", Q, "flag == 1", False, {"flag": True}),
    case("one-ne-true", Q, "one != true", True, {"one": 1}),
    case("number-ne-number", Q, "level != 4", True),
    case("number-ne-same", Q, "level != 3.0", False),
    case("bool-ne-bool", Q, "on_break != true", True),
    case("string-ne-same", Q, "region != 'emea'", False),
    case("string-ne-other", Q, "region != 'apac'", True),
    case("object-eq-itself", Q, "routing == routing", False),
    case("array-eq-itself", Q, "skills == skills", False),
    case("number-eq-itself", Q, "level == level", True),
    case("string-ne-itself", Q, "region != region", False),
    case("object-ne-object", Q, "routing.levels != routing", False),
    case("array-ne-null-constant", Q, "skills != null", True),
    case("array-eq-array-constant", Q, "skills == ['support', 'sales']", False),
    case(
        "foreign-type-never-equal",
        Q,
        "when == 'x'",
        False,
        {"when": datetime(2024, 1, 1)},
    ),
    case("foreign-type-not-null", Q, "when != null", True, {"when": {1, 2}}),
    case("foreign-type-ne-string", Q, "when != 'x'", False, {"when": {1, 2}}),
]

PRECEDENCE_AND_NESTING = [
    case("and-binds-tighter", Q, "level == 3 OR level == 4 AND region == 'apac'", True),
    case("and-then-or", Q, "region == 'apac' AND level == 3 OR level == 3", True),
    case(
        "parens-override", Q, "(level == 3 OR level == 4) AND region == 'apac'", False
    ),
    case(
        "parens-group-or",
        Q,
        "(region == 'apac' OR level == 3) AND skills HAS 'sales'",
        True,
    ),
    case("redundant-parens", Q, "((((level == 3))))", True),
    case(
        "deep-mixed",
        Q,
        "level == 3 AND (region == 'apac' OR (skills HAS 'sales' AND (languages[0] == 'en')))",
        True,
    ),
    case("max-depth-ok", Q, "(" * MAX_DEPTH + "level == 3" + ")" * MAX_DEPTH, True),
    case(
        "long-or-chain",
        Q,
        " OR ".join(f"level == {n}" for n in range(100, 3, -1)) + " OR level == 3",
        True,
    ),
    case("long-and-chain", Q, " AND ".join(["level == 3"] * 100), True),
    case(
        "long-and-chain-one-false",
        Q,
        " AND ".join(["level == 3"] * 50 + ["level == 4"]),
        False,
    ),
    case("parens-in-string-do-not-nest", Q, "name != '" + "(" * 100 + "'", True),
    case("and-short-circuit", Q, "level == 4 AND skills HAS 'sales'", False),
    case("or-short-circuit", Q, "level == 3 OR skills HAS 'sales'", True),
    case("three-way-or", Q, "level == 1 OR level == 2 OR level == 3", True),
    case(
        "three-way-and-false",
        Q,
        "level == 3 AND region == 'emea' AND on_break == true",
        False,
    ),
]

TIME_IDENTIFIERS = [
    case("day-of-week", F, "taskrouter.dayOfWeek == 'Sat'", True),
    case("day-of-week-lone-equals", F, "taskrouter.dayOfWeek = 'Sat'", True),
    case("current-time", F, "taskrouter.currentTime == 1830", True),
    case(
        "office-hours",
        F,
        "taskrouter.currentTime >= 0800 AND taskrouter.currentTime < 1700",
        False,
    ),
    case("current-hour", F, "taskrouter.currentHour == 18", True),
    case("current-min", F, "taskrouter.currentMin == 30", True),
    case("weekday-list", F, "taskrouter.dayOfWeek IN ['Mon', 'Tue']", False),
    case(
        "time-in-target",
        R,
        "taskrouter.currentHour > 12 AND task.type == 'support'",
        True,
    ),
    case("time-in-worker", Q, "taskrouter.currentHour >= 18 AND level == 3", True),
    case("time-on-right", F, "1800 < taskrouter.currentTime", True),
    case("other-taskrouter-key", F, "taskrouter.other == null", True),
]

SKIP_IF_COUNTERS = [
    case("skip-none-available", S, "workers.available == 0", True),
    case("skip-gt", S, "workers.available > 0", False),
    case("skip-and", S, "workers.unavailable >= 3 AND workers.available == 0", True),
    case("skip-activity", S, f"workers.{ACTIVITY_SID} == 2", True),
    case("skip-unknown-activity", S, f"workers.{BUSY_SID} == 0", False),
    case("skip-unknown-activity-null", S, f"workers.{BUSY_SID} == null", True),
    case("skip-always", S, "1==1", True),
    case("skip-unprefixed", S, "available == 0", False),
]

TARGET_AND_LISTS = [
    case("target-worker-sid", R, f"worker.sid == '{WORKER_SID}'", True),
    case("target-channel-assigned", R, "worker.channel.voice.assigned_tasks < 2", True),
    case("target-channel-available", R, "worker.channel.voice.available == true", True),
    case(
        "target-channel-percentage",
        R,
        "worker.channel.voice.available_capacity_percentage >= 50",
        True,
    ),
    case(
        "target-unknown-channel", R, "worker.channel.chat.assigned_tasks == null", True
    ),
    case(
        "target-both-nested",
        R,
        "task.customer.tags HAS 'vip' AND worker.routing.levels.billing > 3",
        True,
    ),
    case("target-ignore-agent-missing", R, "worker.sid != task.ignoreAgent", True),
    case("target-index", R, "task.type == worker.skills[0]", True),
    case("target-unprefixed-eq", R, "type == 'support'", False),
    case("target-unprefixed-ne", R, "type != 'support'", True),
    case("target-wrong-prefix", R, "tasks.type == 'support'", False),
    case("target-both-missing", R, "task.missing == worker.missing", True),
    case("target-activity-sid", R, f"worker.activity_sid == '{ACTIVITY_SID}'", True),
    case("target-number-vs-number", R, "worker.level >= task.escalations", True),
    case("target-float-vs-int", R, "task.score > worker.level", True),
    case("target-unprefixed-path-vs-path", R, "type == task.type", False),
    case("task-kind-literal-task-key", F, "task.x == 1", True, {"task": {"x": 1}}),
    case("list-sid", L, f"sid == '{WORKER_SID}'", True),
    case("list-friendly-name", L, "friendly_name == 'Alice'", True),
    case(
        "list-activity-and-skill",
        L,
        "activity_name == 'Available' AND skills HAS 'sales'",
        True,
    ),
    case("list-activity-sid", L, f"activity_sid IN ['{ACTIVITY_SID}']", True),
]

ALL_CASES = (
    WORKED_EXAMPLES
    + LEXICAL
    + PATHS_AND_ARRAYS
    + SCALAR_OPERATORS
    + NULLS_AND_TYPES
    + PRECEDENCE_AND_NESTING
    + TIME_IDENTIFIERS
    + SKIP_IF_COUNTERS
    + TARGET_AND_LISTS
)


@pytest.mark.parametrize(("kind", "text", "document", "expected"), ALL_CASES)
def test_evaluate_table(
    kind: ExpressionKind, text: str, document: dict, expected: bool
) -> None:
    assert compile_expression(text, kind).evaluate(document, now=NOW) is expected


def test_table_has_at_least_150_cases() -> None:
    assert len(ALL_CASES) >= 150


# ---- parse errors --------------------------------------------------------------

PARSE_ERRORS = [
    pytest.param(
        "skill-level > 3", 5, "unexpected '-' at position 5", id="ex39-hyphen"
    ),
    pytest.param("is_vip", 6, "expected an operator", id="lone-operand"),
    pytest.param("NOT level == 3", 0, "unary NOT is not supported", id="unary-not"),
    pytest.param("NOT (level == 3)", 0, "unary NOT", id="unary-not-parens"),
    pytest.param(
        "level ==", 8, "unexpected end of input at position 8", id="missing-right"
    ),
    pytest.param("level == 3 AND", 14, "unexpected end of input", id="dangling-and"),
    pytest.param("level == 3 OR", 13, "unexpected end of input", id="dangling-or"),
    pytest.param("(level == 3", 11, "expected ')'", id="unclosed-paren"),
    pytest.param("level == 3)", 10, "unexpected ')' at position 10", id="extra-paren"),
    pytest.param("name == 'Alice", 8, "unterminated string", id="unterminated-single"),
    pytest.param('name == "Alice', 8, "unterminated string", id="unterminated-double"),
    pytest.param(
        r"name == 'Alice\'", 8, "unterminated string", id="escaped-closing-quote"
    ),
    pytest.param("level >> 3", 7, "unexpected '>' at position 7", id="double-gt"),
    pytest.param("level === 3", 8, "unexpected '=' at position 8", id="triple-equals"),
    pytest.param("level <> 3", 7, "unexpected '>' at position 7", id="sql-not-equal"),
    pytest.param("level ! 3", 6, "unexpected '!' at position 6", id="bang"),
    pytest.param("level == 3 level == 4", 11, "unexpected 'level'", id="missing-and"),
    pytest.param(
        "region IN [region]", 11, "expected one of ']', a constant", id="path-in-array"
    ),
    pytest.param("region IN [[1]]", 11, "unexpected '['", id="nested-array"),
    pytest.param("region IN [1,]", 13, "expected a constant", id="trailing-comma"),
    pytest.param("a.b. == 1", 3, "unexpected '.' at position 3", id="trailing-dot"),
    pytest.param("level == 3 && x == 1", 11, "unexpected '&'", id="ampersands"),
    pytest.param("level == 1.", 10, "unexpected '.'", id="bare-decimal-point"),
    pytest.param("== 3", 0, "unexpected '==' at position 0", id="missing-left"),
    pytest.param("()", 1, "unexpected ')' at position 1", id="empty-parens"),
    pytest.param("skills HAS", 10, "unexpected end of input", id="has-without-right"),
    pytest.param(
        "level == 3 AND AND x == 1", 15, "unexpected 'AND' at position 15", id="and-and"
    ),
    pytest.param("in == 1", 0, "unexpected 'in' at position 0", id="keyword-as-key"),
    pytest.param("null.x == 1", 4, "unexpected '.'", id="literal-as-key"),
    pytest.param(
        "languages [1] == 'es'", 10, "unexpected '['", id="space-before-index"
    ),
    pytest.param("languages[-1] == 'es'", 9, "unexpected '['", id="negative-index"),
    pytest.param("level == - 1", 9, "unexpected '-'", id="detached-minus"),
    pytest.param("(level) == 3", 6, "unexpected ')'", id="parenthesised-operand"),
    pytest.param(
        "level == 3 NOT region == 'x'", 11, "unexpected 'NOT'", id="infix-not"
    ),
    pytest.param("level NOT == 3", 10, "unexpected '=='", id="not-without-in"),
    pytest.param("level == 3 ; drop", 11, "unexpected ';'", id="semicolon"),
    pytest.param("level == €", 9, "unexpected '€'", id="non-ascii"),
    pytest.param("naïve == 1", 2, "unexpected 'ï'", id="non-ascii-key"),
]


@pytest.mark.parametrize(("text", "position", "fragment"), PARSE_ERRORS)
def test_compile_rejects_bad_syntax(text: str, position: int, fragment: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression(text, ExpressionKind.WORKER)

    error = caught.value
    assert error.position == position
    assert fragment in error.message
    assert error.message.startswith(f"Invalid expression '{text}': ")
    assert str(error) == error.message


def test_hyphen_message_is_exact() -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression("skill-level > 3", ExpressionKind.WORKER)

    assert (
        caught.value.message
        == "Invalid expression 'skill-level > 3': unexpected '-' at position 5"
    )
    assert (caught.value.line, caught.value.column) == (1, 6)


def test_error_reports_line_and_column_on_multiline_text() -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression("level == 3 AND\nfoo-bar == 1", ExpressionKind.WORKER)

    assert caught.value.position == 18
    assert (caught.value.line, caught.value.column) == (2, 4)


def test_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        compile_expression("level ==", ExpressionKind.TASK)


@pytest.mark.parametrize(
    "text", ["", "   ", "\n\t"], ids=["empty", "spaces", "whitespace"]
)
@pytest.mark.parametrize("kind", [F, R, S, L], ids=lambda kind: kind.value)
def test_empty_expression_rejected_outside_queues(
    text: str, kind: ExpressionKind
) -> None:
    with pytest.raises(ExpressionError, match="it is empty"):
        compile_expression(text, kind)


def test_empty_queue_expression_matches_nobody() -> None:
    expression = compile_expression("", ExpressionKind.WORKER)

    assert expression.evaluate(W) is False
    assert expression.references() == frozenset()


def test_too_long_expression_rejected() -> None:
    text = "level == 3 OR " * 300 + "level == 3"
    assert len(text) > MAX_LENGTH

    with pytest.raises(ExpressionError, match=f"longer than {MAX_LENGTH} characters"):
        compile_expression(text, ExpressionKind.WORKER)


def test_expression_at_length_limit_accepted() -> None:
    text = "name != '" + "x" * (MAX_LENGTH - 10) + "'"
    assert len(text) == MAX_LENGTH

    assert compile_expression(text, ExpressionKind.WORKER).evaluate(W, now=NOW)


def test_nesting_beyond_limit_rejected_with_position() -> None:
    text = "(" * (MAX_DEPTH + 1) + "level == 3" + ")" * (MAX_DEPTH + 1)

    with pytest.raises(
        ExpressionError, match=f"deeper than {MAX_DEPTH} levels"
    ) as caught:
        compile_expression(text, ExpressionKind.WORKER)
    assert caught.value.position == MAX_DEPTH


def test_very_deep_nesting_rejected_without_recursion_error() -> None:
    text = "(" * 2000 + "a == 1" + ")" * 2000

    with pytest.raises(ExpressionError, match="deeper than"):
        compile_expression(text, ExpressionKind.WORKER)


def test_non_string_text_rejected() -> None:
    with pytest.raises(ExpressionError, match="must be a string"):
        compile_expression(None, ExpressionKind.WORKER)  # type: ignore[arg-type]


def test_unknown_kind_rejected() -> None:
    with pytest.raises(TypeError):
        compile_expression("1==1", "worker")  # type: ignore[arg-type]


# ---- runtime robustness, time, references, caching -------------------------------


@pytest.mark.parametrize(
    "document",
    [None, [], "level", 3, {"level": object()}, {"skills": {"a": 1}}],
    ids=["none", "list", "string", "number", "foreign-value", "object-for-array"],
)
def test_evaluate_never_raises(document: Any) -> None:
    expression = compile_expression(
        "level >= 3 OR skills HAS 'x' OR a.b[2].c == 'x' OR name CONTAINS 'x'",
        ExpressionKind.WORKER,
    )

    assert expression.evaluate(document, now=NOW) is False


def test_time_identifiers_use_utc_for_aware_now() -> None:
    expression = compile_expression(
        "taskrouter.currentTime == 1830", ExpressionKind.TASK
    )
    paris_summer = timezone(timedelta(hours=2))

    assert expression.evaluate(
        {}, now=datetime(2024, 6, 1, 20, 30, tzinfo=paris_summer)
    )
    assert not expression.evaluate(
        {}, now=datetime(2024, 6, 1, 18, 30, tzinfo=paris_summer)
    )


def test_time_identifiers_take_naive_now_as_utc() -> None:
    expression = compile_expression(
        "taskrouter.dayOfWeek == 'Mon' AND taskrouter.currentTime == 905",
        ExpressionKind.TASK,
    )

    assert expression.evaluate({}, now=datetime(2024, 6, 3, 9, 5))


def test_time_identifiers_default_to_current_utc_time() -> None:
    today = datetime.now(timezone.utc).strftime("%a")
    expression = compile_expression(
        f"taskrouter.dayOfWeek == '{today}'", ExpressionKind.TASK
    )

    assert expression.evaluate({})


def test_references_lists_paths_as_written() -> None:
    expression = compile_expression(
        "skills HAS 'x' AND routing.levels.billing > 3 OR languages[1] == 'es'"
        " OR taskrouter.currentHour > 8",
        ExpressionKind.WORKER,
    )

    assert expression.references() == frozenset(
        {"skills", "routing.levels.billing", "languages[1]", "taskrouter.currentHour"}
    )


def test_references_include_both_sides_of_target() -> None:
    expression = compile_expression(
        "task.language IN worker.languages", ExpressionKind.TARGET
    )

    assert expression.references() == frozenset({"task.language", "worker.languages"})


def test_compile_is_cached_per_text_and_kind() -> None:
    first = compile_expression("level > 1", ExpressionKind.WORKER)

    assert compile_expression("level > 1", ExpressionKind.WORKER) is first
    assert compile_expression("level > 1", ExpressionKind.TASK) is not first
    assert first.text == "level > 1" and first.kind is ExpressionKind.WORKER


def test_compiled_expressions_compare_by_text_and_kind() -> None:
    first = compile_expression("level > 1", ExpressionKind.WORKER)

    assert first == compile_expression("level > 1", ExpressionKind.WORKER)
    assert first != compile_expression("level > 1", ExpressionKind.TASK)
    assert len({first, compile_expression("level > 1", ExpressionKind.WORKER)}) == 1


# ---- lone paths (known-agent routing) --------------------------------------------


def test_compile_path_resolves_task_attribute() -> None:
    path = compile_path("task.customer.tags[1]")

    assert path.segments == ("task", "customer", "tags", 1)
    assert path.resolve({"task": T}) == "billing"
    assert path.resolve({"task": {}}) is None
    assert path.resolve(None) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("task.agent-sid", "unexpected '-'"),
        ("task.a b", "unexpected 'b'"),
        ("null", "is not an attribute path"),
        ("", "it is empty"),
    ],
    ids=["hyphen", "two-words", "keyword", "empty"],
)
def test_compile_path_rejects_non_paths(text: str, fragment: str) -> None:
    with pytest.raises(ExpressionError, match=fragment):
        compile_path(text)


# ---- order_by --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "clauses"),
    [
        ("worker.level DESC", (("level", True),)),
        (
            "worker.english_level ASC, worker.support_level DESC",
            (("english_level", False), ("support_level", True)),
        ),
        ("worker.level desc", (("level", True),)),
        ("  worker.level   Asc  ", (("level", False),)),
        ("worker.routing.levels.billing ASC", (("routing.levels.billing", False),)),
        ("worker.scores[0] DESC", (("scores[0]", True),)),
        ("worker.desc ASC", (("desc", False),)),
    ],
    ids=["one", "two", "lowercase", "spaces", "nested", "index", "key-named-desc"],
)
def test_parse_order_by(text: str, clauses: tuple) -> None:
    assert parse_order_by(text).clauses == clauses


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("worker.level", 12, "expected ASC or DESC"),
        ("worker.level UP", 13, "unexpected 'UP' at position 13, expected ASC or DESC"),
        ("level DESC", 0, "must start with 'worker.'"),
        ("worker.level DESC, level ASC", 19, "must start with 'worker.'"),
        ("worker.level DESC,", 18, "unexpected end of input"),
        ("worker.level DESC worker.x ASC", 18, "unexpected 'worker.x'"),
        ("worker.skill-level ASC", 12, "unexpected '-'"),
        ("worker[0] ASC", 0, "must start with 'worker.'"),
        ("DESC", 0, "unexpected 'DESC'"),
        ("", None, "it is empty"),
    ],
    ids=[
        "no-direction",
        "bad-direction",
        "no-prefix",
        "second-no-prefix",
        "trailing-comma",
        "missing-comma",
        "hyphen",
        "index-on-worker",
        "direction-only",
        "empty",
    ],
)
def test_parse_order_by_rejects(text: str, position: int | None, fragment: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_order_by(text)

    assert caught.value.position == position
    assert fragment in caught.value.message
    assert caught.value.message.startswith(f"Invalid order_by '{text}'")


def _ranked(order_by: str, workers: dict[str, dict]) -> list[str]:
    order = parse_order_by(order_by)
    return sorted(workers, key=lambda name: order.sort_key(workers[name]))


def test_order_by_descending_puts_missing_last() -> None:
    workers = {"a": {"level": 1}, "b": {}, "c": {"level": 5}, "d": {"level": 3.5}}

    assert _ranked("worker.level DESC", workers) == ["c", "d", "a", "b"]


def test_order_by_ascending_puts_missing_last() -> None:
    workers = {"a": {"level": 1}, "b": {}, "c": {"level": 5}, "d": {"level": -2}}

    assert _ranked("worker.level ASC", workers) == ["d", "a", "c", "b"]


def test_order_by_treats_non_numbers_as_missing() -> None:
    workers = {
        "bool": {"level": True},
        "text": {"level": "9"},
        "null": {"level": None},
        "nan": {"level": float("nan")},
        "two": {"level": 2},
    }

    assert _ranked("worker.level DESC", workers)[0] == "two"
    assert _ranked("worker.level ASC", workers)[0] == "two"


def test_order_by_breaks_ties_with_next_clause() -> None:
    workers = {
        "a": {"english": 5, "support": 1},
        "b": {"english": 5, "support": 3},
        "c": {"english": 2, "support": 9},
        "d": {"english": 5},
    }

    ranked = _ranked("worker.english DESC, worker.support DESC", workers)

    assert ranked == ["b", "a", "d", "c"]


def test_order_by_reads_nested_paths() -> None:
    workers = {
        "a": {"routing": {"levels": {"billing": 2}}},
        "b": {"routing": {"levels": {"billing": 4}}},
        "c": {"routing": "flat"},
    }

    assert _ranked("worker.routing.levels.billing DESC", workers) == ["b", "a", "c"]


def test_order_by_sort_key_never_raises() -> None:
    order = parse_order_by("worker.a.b DESC")

    assert order.sort_key(None) == (1, 0)  # type: ignore[arg-type]
    assert order.sort_key({"a": [1]}) == (1, 0)


def test_order_by_sort_key_is_stable_for_equal_workers() -> None:
    order = parse_order_by("worker.level ASC")

    assert order.sort_key({"level": 2}) == order.sort_key({"level": 2.0})


# ---- properties ------------------------------------------------------------------

KEYS = ["a", "b", "c"]
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.integers(-40, 40).map(lambda n: n / 4)
    | st.text(alphabet="ab'\"\\ ", max_size=3)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(KEYS), inner, max_size=3)
    ),
    max_leaves=8,
)
DOCUMENTS = st.dictionaries(st.sampled_from(KEYS), JSON_VALUES, max_size=3)
OPERATORS = ["==", "!=", ">", ">=", "<", "<=", "HAS", "IN", "NOT IN", "CONTAINS"]
MIRRORS = {
    "==": "==",
    "!=": "!=",
    ">": "<",
    ">=": "<=",
    "<": ">",
    "<=": ">=",
    "HAS": "IN",
    "IN": "HAS",
}


def _literal(value: Any) -> str:
    """Write a scalar (or a flat array of scalars) as expression text."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_literal(item) for item in value) + "]"
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


CONSTANTS = JSON_SCALARS | st.lists(JSON_SCALARS, max_size=3)
PATHS = st.sampled_from(["a", "b", "c", "a.b", "a[0]", "b[1].c", "missing"])
OPERANDS = PATHS | CONSTANTS.map(_literal)


@st.composite
def comparisons(draw: st.DrawFn) -> str:
    return f"{draw(OPERANDS)} {draw(st.sampled_from(OPERATORS))} {draw(OPERANDS)}"


EXPRESSIONS = st.recursive(
    comparisons(),
    lambda inner: st.tuples(inner, st.sampled_from(["AND", "OR"]), inner).map(
        lambda parts: f"({parts[0]}) {parts[1]} ({parts[2]})"
    ),
    max_leaves=6,
)


@given(text=EXPRESSIONS, document=DOCUMENTS)
def test_property_evaluate_returns_bool_and_never_raises(
    text: str, document: dict
) -> None:
    result = compile_expression(text, ExpressionKind.WORKER).evaluate(document, now=NOW)

    assert result is True or result is False


@given(left=EXPRESSIONS, right=EXPRESSIONS, document=DOCUMENTS)
def test_property_or_and_match_python(left: str, right: str, document: dict) -> None:
    def evaluate(text: str) -> bool:
        return compile_expression(text, ExpressionKind.TASK).evaluate(document, now=NOW)

    assert evaluate(f"({left}) OR ({right})") == (evaluate(left) or evaluate(right))
    assert evaluate(f"({left}) AND ({right})") == (evaluate(left) and evaluate(right))


@given(value=JSON_VALUES, constant=CONSTANTS, operator=st.sampled_from(OPERATORS))
def test_property_constant_matches_path_comparison(
    value: Any, constant: Any, operator: str
) -> None:
    # `a OP <literal>` takes the specialised path; `a OP b` the generic one.
    document = {"a": value, "b": constant}
    fast = compile_expression(
        f"a {operator} {_literal(constant)}", ExpressionKind.WORKER
    )
    generic = compile_expression(f"a {operator} b", ExpressionKind.WORKER)

    assert fast.evaluate(document) == generic.evaluate(document)


@given(value=JSON_VALUES, constant=CONSTANTS, operator=st.sampled_from(sorted(MIRRORS)))
def test_property_constant_on_the_left_mirrors(
    value: Any, constant: Any, operator: str
) -> None:
    literal = _literal(constant)
    left = compile_expression(f"{literal} {operator} a", ExpressionKind.WORKER)
    right = compile_expression(
        f"a {MIRRORS[operator]} {literal}", ExpressionKind.WORKER
    )

    assert left.evaluate({"a": value}) == right.evaluate({"a": value})


@given(value=JSON_SCALARS, constant=JSON_SCALARS)
def test_property_not_equals_negates_equals_on_scalars(
    value: Any, constant: Any
) -> None:
    literal = _literal(constant)
    equal = compile_expression(f"a == {literal}", ExpressionKind.WORKER).evaluate(
        {"a": value}
    )
    differ = compile_expression(f"a != {literal}", ExpressionKind.WORKER).evaluate(
        {"a": value}
    )

    assert equal != differ


@given(value=st.text(alphabet="ab'\"\\ \n(", max_size=8))
def test_property_string_literals_round_trip(value: str) -> None:
    expression = compile_expression(f"a == {_literal(value)}", ExpressionKind.WORKER)

    assert expression.evaluate({"a": value})


@given(
    value=JSON_SCALARS.filter(lambda v: v is not None),
    items=st.lists(JSON_SCALARS, max_size=4),
)
def test_property_in_is_any_equal(value: Any, items: list) -> None:
    document = {"a": value}
    is_in = compile_expression(
        f"a IN {_literal(items)}", ExpressionKind.WORKER
    ).evaluate(document)
    not_in = compile_expression(
        f"a NOT IN {_literal(items)}", ExpressionKind.WORKER
    ).evaluate(document)
    any_equal = any(
        compile_expression(f"a == {_literal(item)}", ExpressionKind.WORKER).evaluate(
            document
        )
        for item in items
        if item is not None
    )

    assert is_in == any_equal
    assert not_in == (not any_equal)
