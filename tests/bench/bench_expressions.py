"""Throughput of compiled expressions over realistic worker attributes.

    .venv/bin/python tests/bench/bench_expressions.py

Prints evaluations per second for typical TargetWorkers and target expressions
over 10,000 generated workers, then the cost of one eligibility scan of a queue
(one expression over every worker) at 1k, 10k and 100k workers. The documents
come from a fixed seed, so runs differ only by machine noise.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

# Run as a plain script from anywhere: make the repository root importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from shared.expressions import ExpressionKind, compile_expression

SEED = 20240601
NOW = datetime(2024, 6, 3, 10, 15, tzinfo=timezone.utc)

SKILLS = ["support", "sales", "billing", "refunds", "tech", "onboarding", "retention"]
LANGUAGES = ["en", "es", "fr", "de", "pt", "it", "ja"]
REGIONS = ["emea", "amer", "apac"]
TEAMS = ["alpha", "bravo", "charlie", "delta"]
SURNAMES = ["Smith", "Garcia", "Müller", "Rossi", "Tanaka", "Dubois"]

WORKER_EXPRESSIONS = [
    "1==1",
    "skills HAS 'support'",
    "skills HAS 'support' AND level >= 3",
    "'es' IN languages AND region IN ['emea', 'apac']",
    "routing.levels.billing > 3 OR (skills HAS 'sales' AND level > 5)",
    "region NOT IN ['amer'] AND name CONTAINS 'Smith' AND on_break == false",
    "team == 'bravo' AND languages[0] == 'en' AND certified == true",
    "taskrouter.currentHour >= 8 AND skills HAS 'tech'",
]
TARGET_EXPRESSION = (
    "task.language IN worker.languages AND worker.level >= task.min_level"
)
TASK = {"type": "support", "language": "es", "min_level": 3}


def make_worker(rng: random.Random, index: int) -> dict[str, Any]:
    """One worker's attributes, shaped like a contact-centre deployment's."""
    return {
        "name": f"Agent{index} {rng.choice(SURNAMES)}",
        "skills": rng.sample(SKILLS, rng.randint(1, 4)),
        "languages": rng.sample(LANGUAGES, rng.randint(1, 3)),
        "level": rng.randint(1, 10),
        "region": rng.choice(REGIONS),
        "team": rng.choice(TEAMS),
        "on_break": rng.random() < 0.1,
        "certified": rng.random() < 0.5,
        "contact_uri": f"client:agent{index}",
        "routing": {
            "levels": {skill: rng.randint(1, 5) for skill in rng.sample(SKILLS, 2)}
        },
    }


def make_workers(count: int) -> list[dict[str, Any]]:
    rng = random.Random(SEED)
    return [make_worker(rng, index) for index in range(count)]


def best_of(repeats: int, run: Callable[[], Any]) -> float:
    """Fastest wall time of `repeats` runs, in seconds (least disturbed by noise)."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def scan(
    text: str, kind: ExpressionKind, documents: Sequence[dict]
) -> tuple[float, int]:
    """Seconds for one scan of `documents`, and how many matched."""
    expression = compile_expression(text, kind)
    evaluate = expression.evaluate
    matched = sum(1 for document in documents if evaluate(document, now=NOW))
    seconds = best_of(5, lambda: [d for d in documents if evaluate(d, now=NOW)])
    return seconds, matched


def print_throughput(workers: list[dict]) -> None:
    print(f"Evaluations per second over {len(workers):,} workers (best of 5 scans)\n")
    print(f"{'expression':<76} {'evals/s':>11} {'match %':>8}")
    print("-" * 97)
    for text in WORKER_EXPRESSIONS:
        seconds, matched = scan(text, ExpressionKind.WORKER, workers)
        _print_row(text, len(workers), seconds, matched)

    documents = [{"task": TASK, "worker": worker} for worker in workers]
    seconds, matched = scan(TARGET_EXPRESSION, ExpressionKind.TARGET, documents)
    _print_row(f"[target] {TARGET_EXPRESSION}", len(documents), seconds, matched)


def _print_row(label: str, count: int, seconds: float, matched: int) -> None:
    rate = count / seconds
    print(f"{label:<76} {rate:>11,.0f} {100 * matched / count:>7.1f}%")


def print_scan_costs(all_workers: list[dict]) -> None:
    text = "skills HAS 'support' AND level >= 3"
    print(f"\nEligibility scan of one queue, TargetWorkers = {text!r}\n")
    print(f"{'workers':>9} {'ms per scan':>12} {'µs per worker':>14}")
    print("-" * 37)
    for count in (1_000, 10_000, 100_000):
        seconds, _ = scan(text, ExpressionKind.WORKER, all_workers[:count])
        print(f"{count:>9,} {seconds * 1000:>12.2f} {seconds * 1e6 / count:>14.3f}")


def main() -> None:
    started = time.perf_counter()
    all_workers = make_workers(100_000)
    print(
        f"Python {sys.version.split()[0]}; generated 100,000 workers in "
        f"{time.perf_counter() - started:.1f} s (seed {SEED})\n"
    )
    print_throughput(all_workers[:10_000])
    print_scan_costs(all_workers)


if __name__ == "__main__":
    main()
