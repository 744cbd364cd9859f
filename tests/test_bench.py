"""The benchmark runs end to end; its figures are checked for shape, never for speed."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from commandexec import bench

# The quick run starts some 18 process pools (each side, each round): a few
# seconds on an idle 2-core machine, more on a busy one.
pytestmark = pytest.mark.time_limit(90)

EXPECTED = {  # the rows of the kinds that exist today
    ("threads", "throughput.command"),
    ("threads", "throughput.function"),
    ("threads", "latency.median"),
    ("threads", "latency.p99"),
    ("inline", "overhead.command"),
    ("inline", "overhead.command_built"),
    ("inline", "latency.median"),
    ("inline", "latency.p99"),
    ("processes", "throughput.command"),
    ("processes", "map.throughput"),
    ("processes", "map.throughput_executor"),
    ("processes", "latency.median"),
    ("processes", "latency.p99"),
    ("processes", "cpu.wall"),
}
KEYS = {"executor", "metric", "ours", "stdlib", "ratio", "unit", "target", "met"}


def run_bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "commandexec.bench", "--quick", *args],
        capture_output=True,
        text=True,
        timeout=75,
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
        assert row["unit"] in ("cmd/s", "item/s", "us", "s")
        assert (row["target"] is None) == (row["met"] is None)
        assert row["met"] in (None, True, False)


def test_only_runs_the_rows_of_one_executor_kind() -> None:
    # Given / When: the quick benchmark is limited to the inline executor
    done = run_bench("--json", "--only", "inline")

    # Then: only inline rows are printed
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert {row["executor"] for row in rows} == {"inline"}


def test_only_processes_runs_every_process_row_with_its_target() -> None:
    # Given / When: the quick benchmark is limited to the process executor
    done = run_bench("--json", "--only", "processes")

    # Then: exactly the process rows are printed, each with a target but the reference row
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert {row["executor"] for row in rows} == {"processes"}
    by_metric = {row["metric"]: row for row in rows}
    assert set(by_metric) == {metric for executor, metric in EXPECTED if executor == "processes"}
    assert by_metric["throughput.command"]["target"] == ">= 3.00x stdlib"
    assert by_metric["map.throughput"]["target"] == ">= 0.70x stdlib"
    assert by_metric["map.throughput_executor"]["target"] is None
    assert by_metric["latency.median"]["target"] == "<= 1.50x stdlib"
    assert by_metric["latency.p99"]["target"] == "<= 1.50x stdlib"
    assert by_metric["cpu.wall"]["target"].startswith("<= 1.15x ideal")
    assert by_metric["cpu.wall"]["unit"] == "s"


def test_the_process_table_says_what_each_side_runs() -> None:
    # Given / When: the quick benchmark prints the process rows as a table
    done = run_bench("--only", "processes")

    # Then: the rows name their counterparts and the legend names the start method
    assert done.returncode == 0, done.stderr
    assert "multiprocessing.Pool.map" in done.stdout
    assert "ProcessPoolExecutor.map" in done.stdout
    assert "ideal" in done.stdout
    assert "forkserver" in done.stdout or "spawn" in done.stdout


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


def test_ratio_at_most_is_met_up_to_the_ratio() -> None:
    # Given: a lower-is-better target of 1.5x stdlib
    target = bench.ratio_at_most(1.5)

    # Then: it is met up to 1.5x and missed beyond
    assert target.text == "<= 1.50x stdlib"
    assert target.met(150.0, 100.0, 0.0)
    assert not target.met(151.0, 100.0, 0.0)


def test_rate_and_wall_time_rows_report_their_overhead() -> None:
    # Given: an item rate row and a wall-time row
    rate = bench.Row("processes", "map.throughput", "map", 1_000_000.0, 500_000.0, "item/s")
    wall = bench.Row("processes", "cpu.wall", "wall", 1.25, 1.0, "s")

    # Then: the rate row's overhead is per item, the wall row's is of the whole run
    assert math.isclose(rate.overhead_us, -1.0)
    assert math.isclose(wall.overhead_us, 250_000.0)
    assert rate.met is None and wall.met is None
