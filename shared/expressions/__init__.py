"""The TaskRouter expression language: one engine wherever expressions appear.

    expr = compile_expression("skills HAS 'x' AND level >= 3", ExpressionKind.WORKER)
    expr.evaluate({"skills": ["x"], "level": 4})                # True
    parse_order_by("worker.level DESC").sort_key({"level": 4})  # (0, -4)

Text is parsed once (lark, LALR, `grammar.lark`) into a small syntax tree, which is
compiled into nested closures; evaluation never raises and never calls eval/exec.
Specification: /work/shared/taskrouter/expressions.md.

Kinds and what identifiers mean (`ExpressionKind`):

    WORKER       TaskQueue TargetWorkers     bare keys over worker attributes
    TASK         workflow filter, task list  bare keys over task attributes
    TARGET       workflow target expression  {"task": attrs, "worker": worker doc}
    SKIP_IF      workflow target skip_if     {"workers": {"available": n, ...}}
    WORKER_LIST  GET /Workers filter         worker attributes + built-in fields

SKIP_IF counters are `available`, `unavailable` and one per activity SID
(`WA...`). WORKER_LIST documents carry `sid`, `friendly_name`, `activity_sid`
and `activity_name` next to the attributes.

The worker document of TARGET is the worker's attributes merged with `sid`,
`friendly_name`, `activity_sid`, `activity_name` and `channel`
(`{"<unique_name>": {"assigned_tasks", "configured_capacity", "available",
"available_capacity_percentage"}}`), so built-ins are read as `worker.sid` etc.
The caller builds these documents; this package only reads them.

Errors:

    ValueError
    └── ExpressionError   bad syntax, too long, too deep; .message, .position (0-based),
                          .line and .column (1-based)

Decisions on points the specification leaves open (unconfirmed there):

- Strings take `\\'`, `\\"` and `\\\\` as escapes; any other backslash stays as
  written. Keys are matched case-sensitively, strings compare case-sensitively,
  CONTAINS is case-sensitive.
- Keywords AND, OR, HAS, IN, NOT IN, CONTAINS and the literals true, false, null
  are case-insensitive and reserved: an attribute named `in` or `null` cannot be
  referenced. Words that merely start with one (`android`, `index`) are fine.
- A lone `=` means `==`. Negative number literals (`-1`) are accepted. Leading
  zeros are allowed (`0800` is 800).
- Unary NOT and a lone operand (`is_vip`) are syntax errors.
- Precedence: parentheses > comparison > AND > OR, left to right.
- Strings order lexicographically with > < >= <=; every other pair except two
  numbers is false.
- `== null` / `!= null` test presence of any value, arrays and objects included
  (the docs expect `preferred_agents != null` to be true for an array). Apart
  from that, an array or object operand makes every scalar operator false,
  including `!=`; `'3' == 3` is false and `'3' != 3` true.
- NULL equals NULL whatever its source: with both keys missing,
  `task.a == worker.b` is true and `task.a != worker.b` false.
- `x HAS null`, `null IN [...]` are false; `missing NOT IN [...]` is true.
- TARGET: a key whose first segment is neither `task` nor `worker` is NULL.
  TASK: `task.x` is looked up literally under a key named "task".
- `taskrouter.currentTime|currentHour|currentMin|dayOfWeek` are read from the
  `now` passed to `evaluate` (UTC; naive datetimes count as UTC) in every kind.
  Any other `taskrouter.*` path is an ordinary lookup.
- An empty WORKER expression compiles and matches nobody (empty TargetWorkers);
  an empty expression of any other kind is an error.
- Limits: 4096 characters, 64 levels of parentheses.
- order_by: the direction (ASC/DESC, any case) is required; paths must start
  with `worker.`; values that are not numbers (bool, string, missing) count as
  missing and sort last.
"""

from ._errors import ExpressionError
from ._expression import (
    AttributePath,
    CompiledExpression,
    ExpressionKind,
    compile_expression,
    compile_path,
)
from ._order_by import OrderBy, parse_order_by
from ._parser import MAX_DEPTH, MAX_LENGTH

__all__ = [
    "MAX_DEPTH",
    "MAX_LENGTH",
    "AttributePath",
    "CompiledExpression",
    "ExpressionError",
    "ExpressionKind",
    "OrderBy",
    "compile_expression",
    "compile_path",
    "parse_order_by",
]
