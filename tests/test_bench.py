"""The benchmark runs end to end; its figures are checked for shape, never for speed."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

from commandexec import bench

EXPECTED = {  # the rows of the kinds that exist today
    ("threads", "throughput.command"),
    ("threads", "throughput.function"),
    ("threads", "latency.median"),
    ("threads", "latency.p99"),
    ("inline", "overhead.command"),
    ("inline", "overhead.command_built"),
    ("inline", "latency.median"),
    ("inline", "latency.p99"),
}
KEYS = {"executor", "metric", "ours", "stdlib", "ratio", "unit", "target", "met"}


def run_bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "commandexec.bench", "--quick", *args],
        capture_output=True,
        text=True,
        timeout=25,
        cwd=Path(__file__).resolve().parents[1],
        check=False,
    )


def test_quick_json_run_prints_a_row_per_executor_and_metric() -> None:
    # Given / When: the quick benchmark is run as a module with --json
    done = run_bench("--json")

    # Then: it succeeds and prints one well-formed row per expected figure
    assert done.returncode == 0, done.stderr
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    assert isinstance(rows, list)
    found = [(row["executor"], row["metric"]) for row in rows]
    assert len(found) == len(set(found)), found
    assert EXPECTED.issubset(found)
    # A kind added later brings rows of its own; each must belong to a case.
    assert {executor for executor, _ in found} == set(bench.CASES)
    for row in rows:
        assert KEYS.issubset(row)
        for name in ("ours", "stdlib", "ratio"):
            assert isinstance(row[name], float), (row, name)
            assert math.isfinite(row[name]) and row[name] > 0, (row, name)
        assert row["unit"] in ("cmd/s", "us")
        assert (row["target"] is None) == (row["met"] is None)
        assert row["met"] in (None, True, False)


def test_only_runs_the_rows_of_one_executor_kind() -> None:
    # Given / When: the quick benchmark is limited to the inline executor
    done = run_bench("--json", "--only", "inline")

    # Then: only inline rows are printed
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert {row["executor"] for row in rows} == {"inline"}


def test_the_table_names_every_executor_and_the_target() -> None:
    # Given / When: the quick benchmark prints its table
    done = run_bench("--only", "inline")

    # Then: the table has a header, the inline rows and the target verdict
    assert done.returncode == 0, done.stderr
    assert "ours/stdlib" in done.stdout
    assert "inline" in done.stdout
    assert "overhead < 3 us" in done.stdout


def test_an_unknown_kind_is_a_usage_error() -> None:
    # Given / When: --only names a kind that has no case
    done = run_bench("--only", "thread")

    # Then: argparse rejects it, naming the choices
    assert done.returncode == 2
    assert "threads" in done.stderr


def test_every_case_has_a_stdlib_counterpart_in_the_legend() -> None:
    assert set(bench.CASES) == set(bench.STDLIB_COUNTERPARTS)
