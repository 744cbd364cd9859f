"""Benchmark: each executor kind side by side with its standard-library counterpart.

Run ``python -m commandexec.bench`` (``--quick`` for a smoke run, ``--only threads``
for one kind, ``--json`` for machine-readable rows). Every figure is measured in
one run against its stdlib counterpart: the sides alternate over several rounds,
each side is warmed up before it is timed, the garbage collector is in the same
state for both, and the best round of each side is reported.

A new executor kind adds its rows by adding one function to :data:`CASES`.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import dataclasses
import gc
import json
import math
import multiprocessing
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

from .command import Command
from .executors.inline import InlineExecutor
from .executors.processes import ProcessExecutor, default_start_method
from .executors.threads import ThreadExecutor
from .registry import Registry

__all__ = [
    "CASES",
    "QUICK",
    "STDLIB_COUNTERPARTS",
    "Row",
    "Settings",
    "Target",
    "format_table",
    "inline_case",
    "main",
    "overhead_below",
    "processes_case",
    "ratio_at_least",
    "ratio_at_most",
    "run",
    "threads_case",
]

T = TypeVar("T")
E = TypeVar("E", bound=concurrent.futures.Executor)


def noop() -> None:
    """The command every benchmark runs: it does nothing, so only overhead is measured."""


def noop_item(item: object) -> None:
    """The function the map benchmarks apply to each item: it does nothing."""


def spin(iterations: int) -> int:
    """A pure-Python CPU-bound loop (calibrated by :func:`_calibrate_spin`)."""
    total = 0
    for i in range(iterations):
        total += i
    return total


def _registry() -> Registry:
    # A private registry: the benchmark must not touch the default one. Its
    # callables are taken from this module by its import name, so worker
    # processes can import them even when it runs as ``python -m`` (``__main__``).
    from . import bench

    registry = Registry()
    registry.register("noop", bench.noop)
    registry.register("spin", bench.spin)
    return registry


# -- settings, targets and rows ------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    """How much work each measurement does.

    Attributes:
        commands: Commands per throughput or per-call overhead measurement.
        samples: Round trips per latency measurement.
        rounds: Rounds per comparison; the sides alternate in each round and the
            best round of each side is reported.
        gc_off: Disable the garbage collector while timing (both sides alike);
            by default it stays enabled, as in a real program, and is collected
            before each timed section.
        pool_commands: At most this many commands for ProcessPoolExecutor's
            submit throughput (it is slow; a rate stays comparable over fewer).
        map_items: Items per process map measurement.
        cpu_commands: CPU-bound commands per process wall-time measurement.
        cpu_seconds: Seconds each CPU-bound command runs (calibrated once).
    """

    commands: int = 100_000
    samples: int = 2_000
    rounds: int = 5
    gc_off: bool = False
    pool_commands: int = 20_000
    map_items: int = 1_000_000
    cpu_commands: int = 8
    cpu_seconds: float = 0.25


QUICK = Settings(
    commands=2_000, samples=200, rounds=2, pool_commands=2_000, map_items=20_000, cpu_commands=2, cpu_seconds=0.05
)
"""Settings for ``--quick``: enough to exercise every path, not to measure."""


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    """A goal for one row.

    Attributes:
        text: The goal, as shown in the table.
        met: Tells from ``(ours, stdlib, overhead_us)`` whether the goal is met.
    """

    text: str
    met: Callable[[float, float, float], bool]


def ratio_at_least(ratio: float) -> Target:
    """Target: ours / stdlib >= *ratio* (for a figure where higher is better)."""
    return Target(f">= {ratio:.2f}x stdlib", lambda ours, stdlib, _: ours >= ratio * stdlib)


def ratio_at_most(ratio: float) -> Target:
    """Target: ours / stdlib <= *ratio* (for a figure where lower is better)."""
    return Target(f"<= {ratio:.2f}x stdlib", lambda ours, stdlib, _: ours <= ratio * stdlib)


def overhead_below(microseconds: float) -> Target:
    """Target: ours costs less than *microseconds* more per command than stdlib."""
    return Target(f"overhead < {microseconds:g} us", lambda _o, _s, extra: extra < microseconds)


@dataclasses.dataclass(frozen=True, slots=True)
class Row:
    """One figure of ours against the same figure of the stdlib counterpart.

    Attributes:
        executor: The executor kind (``"threads"``, ...).
        metric: A stable id for the figure (``"throughput.command"``, ...).
        label: What was measured, for people.
        ours: The figure for commandexec.
        stdlib: The figure for the standard-library counterpart.
        unit: ``"cmd/s"`` or ``"item/s"`` (higher is better), ``"us"`` or ``"s"``
            (lower is better).
        target: The goal for this row, if it has one.
    """

    executor: str
    metric: str
    label: str
    ours: float
    stdlib: float
    unit: str
    target: Target | None = None

    @property
    def ratio(self) -> float:
        """ours / stdlib."""
        return self.ours / self.stdlib if self.stdlib else math.inf

    @property
    def overhead_us(self) -> float:
        """Microseconds per command (or item) that ours costs more than stdlib (negative: less).

        For a wall time in ``"s"``, the extra microseconds of the whole run.
        """
        if self.unit.endswith("/s"):
            return 1e6 / self.ours - 1e6 / self.stdlib
        if self.unit == "s":
            return (self.ours - self.stdlib) * 1e6
        return self.ours - self.stdlib

    @property
    def met(self) -> bool | None:
        """Whether the target is met; ``None`` without a target."""
        if self.target is None:
            return None
        return self.target.met(self.ours, self.stdlib, self.overhead_us)

    def to_dict(self) -> dict[str, Any]:
        """Return the row as JSON-able data."""
        return {
            "executor": self.executor,
            "metric": self.metric,
            "label": self.label,
            "ours": self.ours,
            "stdlib": self.stdlib,
            "ratio": self.ratio,
            "overhead_us": self.overhead_us,
            "unit": self.unit,
            "target": self.target.text if self.target is not None else None,
            "met": self.met,
        }


# -- measuring ------------------------------------------------------------------


@contextlib.contextmanager
def _timed_section(settings: Settings) -> Iterator[None]:
    # Same collector state for every side: collected before, optionally off during.
    gc.collect()
    if not settings.gc_off:
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _alternate(sides: Sequence[Callable[[], T]], rounds: int) -> list[list[T]]:
    """Run each side once per round, rotating who goes first; return each side's results."""
    results: list[list[T]] = [[] for _ in sides]
    for round_ in range(rounds):
        for offset in range(len(sides)):
            index = (round_ + offset) % len(sides)
            results[index].append(sides[index]())
    return results


def _percentile(sorted_values: Sequence[float], fraction: float) -> float:
    index = max(0, math.ceil(fraction * len(sorted_values)) - 1)
    return sorted_values[index]


def _latency(samples_ns: list[int]) -> tuple[float, float]:
    """Return (median, p99) of *samples_ns*, in microseconds."""
    values = sorted(s / 1000 for s in samples_ns)
    return statistics.median(values), _percentile(values, 0.99)


def _best_latency(rounds: list[tuple[float, float]]) -> tuple[float, float]:
    return min(r[0] for r in rounds), min(r[1] for r in rounds)


def _pool_throughput(
    make: Callable[[], E],
    submit_all: Callable[[E, list[Command]], list[Future[Any]]],
    settings: Settings,
    count: int | None = None,
) -> Callable[[], float]:
    """A side that times submitting *count* (default *settings.commands*) no-ops and waiting for them all."""
    total = settings.commands if count is None else count

    def side() -> float:
        warmup = [Command("noop") for _ in range(max(100, total // 10))]
        commands = [Command("noop") for _ in range(total)]
        with make() as executor:
            concurrent.futures.wait(submit_all(executor, warmup))
            with _timed_section(settings):
                start = time.perf_counter()
                futures = submit_all(executor, commands)
                concurrent.futures.wait(futures)
                elapsed = time.perf_counter() - start
            del futures
        return total / elapsed

    return side


def _round_trips(
    make: Callable[[], E],
    submit: Callable[[E, Command], Future[Any]],
    settings: Settings,
) -> Callable[[], tuple[float, float]]:
    """A side that times *settings.samples* single submit-and-wait round trips."""

    def side() -> tuple[float, float]:
        warmup = [Command("noop") for _ in range(max(50, settings.samples // 10))]
        commands = [Command("noop") for _ in range(settings.samples)]
        samples: list[int] = []
        clock = time.perf_counter_ns
        with make() as executor:
            for command in warmup:
                submit(executor, command).result()
            with _timed_section(settings):
                for command in commands:
                    start = clock()
                    submit(executor, command).result()
                    samples.append(clock() - start)
        return _latency(samples)

    return side


# -- cases: one function per executor kind -------------------------------------


def threads_case(settings: Settings) -> list[Row]:
    """ThreadExecutor(max_workers=2) against ThreadPoolExecutor(max_workers=2)."""
    registry = _registry()

    def ours() -> ThreadExecutor:
        return ThreadExecutor(max_workers=2, registry=registry)

    def stdlib() -> concurrent.futures.ThreadPoolExecutor:
        return concurrent.futures.ThreadPoolExecutor(max_workers=2)

    def submit_commands(ex: ThreadExecutor, cmds: list[Command]) -> list[Future[Any]]:
        return [ex.submit(command) for command in cmds]

    def submit_functions(ex: concurrent.futures.Executor, cmds: list[Command]) -> list[Future[Any]]:
        return [ex.submit(noop) for _ in cmds]

    by_command, by_function, by_stdlib = _alternate(
        [
            _pool_throughput(ours, submit_commands, settings),
            _pool_throughput(ours, submit_functions, settings),
            _pool_throughput(stdlib, submit_functions, settings),
        ],
        settings.rounds,
    )
    stdlib_rate = max(by_stdlib)
    n = f"{settings.commands:,}"
    target = ratio_at_least(1.0)
    rows = [
        Row("threads", "throughput.command", f"throughput, {n} x submit(Command) + wait",
            max(by_command), stdlib_rate, "cmd/s", target),
        Row("threads", "throughput.function", f"throughput, {n} x submit(noop) + wait",
            max(by_function), stdlib_rate, "cmd/s", target),
    ]  # fmt: skip

    ours_latency, stdlib_latency = _alternate(
        [
            _round_trips(ours, lambda ex, command: ex.submit(command), settings),
            _round_trips(stdlib, lambda ex, _: ex.submit(noop), settings),
        ],
        settings.rounds,
    )
    ours_median, ours_p99 = _best_latency(ours_latency)
    stdlib_median, stdlib_p99 = _best_latency(stdlib_latency)
    rows += [
        Row("threads", "latency.median", "round trip submit(Command).result(), median",
            ours_median, stdlib_median, "us"),
        Row("threads", "latency.p99", "round trip submit(Command).result(), p99",
            ours_p99, stdlib_p99, "us"),
    ]  # fmt: skip
    return rows


def inline_case(settings: Settings) -> list[Row]:
    """InlineExecutor.submit(...).result() against calling the function directly."""
    executor = InlineExecutor(registry=_registry())

    def per_call(loop: Callable[[list[Command]], None]) -> Callable[[], float]:
        def side() -> float:
            commands = [Command("noop") for _ in range(settings.commands)]
            loop(commands[: max(100, settings.commands // 10)])  # warm-up
            with _timed_section(settings):
                start = time.perf_counter()
                loop(commands)
                elapsed = time.perf_counter() - start
            return elapsed / settings.commands * 1e6

        return side

    # The same loop over the same list on every side, so loop overhead cancels out.
    def prebuilt(commands: list[Command]) -> None:
        for command in commands:
            executor.submit(command).result()

    def built_in_loop(commands: list[Command]) -> None:
        for _ in commands:
            executor.submit(Command("noop")).result()

    def direct(commands: list[Command]) -> None:
        for _ in commands:
            noop()

    by_prebuilt, by_built, by_direct = _alternate(
        [per_call(prebuilt), per_call(built_in_loop), per_call(direct)], settings.rounds
    )
    direct_us = min(by_direct)
    n = f"{settings.commands:,}"
    rows = [
        Row("inline", "overhead.command", f"per call, {n} x submit(Command).result()",
            min(by_prebuilt), direct_us, "us", overhead_below(3.0)),
        Row("inline", "overhead.command_built", f"per call, {n} x submit(Command('noop')).result()",
            min(by_built), direct_us, "us"),
    ]  # fmt: skip

    def round_trips(call: Callable[[Command], object]) -> Callable[[], tuple[float, float]]:
        def side() -> tuple[float, float]:
            commands = [Command("noop") for _ in range(settings.samples)]
            for command in commands[: max(50, settings.samples // 10)]:
                call(command)
            samples: list[int] = []
            clock = time.perf_counter_ns
            with _timed_section(settings):
                for command in commands:
                    start = clock()
                    call(command)
                    samples.append(clock() - start)
            return _latency(samples)

        return side

    ours_latency, direct_latency = _alternate(
        [round_trips(lambda cmd: executor.submit(cmd).result()), round_trips(lambda _: noop())],
        settings.rounds,
    )
    executor.shutdown()
    ours_median, ours_p99 = _best_latency(ours_latency)
    direct_median, direct_p99 = _best_latency(direct_latency)
    rows += [
        Row("inline", "latency.median", "round trip submit(Command).result(), median",
            ours_median, direct_median, "us"),
        Row("inline", "latency.p99", "round trip submit(Command).result(), p99",
            ours_p99, direct_p99, "us"),
    ]  # fmt: skip
    return rows


WORKERS = 2
"""Worker processes on each side of the process comparisons."""
MAP_CHUNKSIZE = 100
"""Items per chunk in the process map comparisons (on every side)."""


def _calibrate_spin(seconds: float) -> int:
    """Return the :func:`spin` iterations that take about *seconds* here (measured once)."""
    iterations = 10_000
    while True:  # grow until a run is long enough to time reliably
        start = time.perf_counter()
        spin(iterations)
        elapsed = time.perf_counter() - start
        if elapsed >= min(0.05, seconds / 2):
            break
        iterations *= 4
    iterations = max(1, round(iterations * seconds / elapsed))
    runs = []
    for _ in range(3):  # then correct the estimate once at full length, by the best run
        start = time.perf_counter()  # (the least disturbed by anything else on the machine)
        spin(iterations)
        runs.append(time.perf_counter() - start)
    return max(1, round(iterations * seconds / min(runs)))


def processes_case(settings: Settings) -> list[Row]:
    """ProcessExecutor(max_workers=2) against ProcessPoolExecutor and multiprocessing.Pool.

    Every side has 2 worker processes and the same start method (ours' default,
    forkserver where available); each pool is started and warmed up before the
    timed section, so pool start-up is never timed.
    """
    from . import bench  # the callables by import name: worker processes must import them

    registry = _registry()
    context = multiprocessing.get_context(default_start_method())

    def ours() -> ProcessExecutor:
        return ProcessExecutor(max_workers=WORKERS, registry=registry)

    def stdlib() -> concurrent.futures.ProcessPoolExecutor:
        return concurrent.futures.ProcessPoolExecutor(max_workers=WORKERS, mp_context=context)

    def submit_commands(ex: ProcessExecutor, cmds: list[Command]) -> list[Future[Any]]:
        return [ex.submit(command) for command in cmds]

    def submit_functions(ex: concurrent.futures.Executor, cmds: list[Command]) -> list[Future[Any]]:
        return [ex.submit(bench.noop) for _ in cmds]

    # a. submit throughput
    pool_commands = min(settings.commands, settings.pool_commands)
    by_command, by_stdlib = _alternate(
        [
            _pool_throughput(ours, submit_commands, settings),
            _pool_throughput(stdlib, submit_functions, settings, pool_commands),
        ],
        settings.rounds,
    )
    n = f"{settings.commands:,}"
    rows = [
        Row("processes", "throughput.command",
            f"throughput, {n} x submit(Command) + wait (stdlib: {pool_commands:,})",
            max(by_command), max(by_stdlib), "cmd/s", ratio_at_least(3.0)),
    ]  # fmt: skip

    # b. map throughput, chunksize 100 on every side
    items = list(range(settings.map_items))
    warm_items = items[: max(10 * MAP_CHUNKSIZE, len(items) // 10)]

    def map_side(make: Callable[[], Any], map_all: Callable[[Any, list[int]], object]) -> Callable[[], float]:
        def side() -> float:
            with make() as pool:
                map_all(pool, warm_items)
                with _timed_section(settings):
                    start = time.perf_counter()
                    map_all(pool, items)
                    elapsed = time.perf_counter() - start
            return len(items) / elapsed

        return side

    def executor_map(ex: concurrent.futures.Executor, work: list[int]) -> object:
        return list(ex.map(bench.noop_item, work, chunksize=MAP_CHUNKSIZE))

    def pool_map(pool: Any, work: list[int]) -> object:
        return pool.map(bench.noop_item, work, chunksize=MAP_CHUNKSIZE)

    by_ours_map, by_pool_map, by_executor_map = _alternate(
        [
            map_side(ours, executor_map),
            map_side(lambda: context.Pool(WORKERS), pool_map),
            map_side(stdlib, executor_map),
        ],
        settings.rounds,
    )
    m = f"{settings.map_items:,}"
    rows += [
        Row("processes", "map.throughput",
            f"map(fn, {m} items, chunksize={MAP_CHUNKSIZE}) vs multiprocessing.Pool.map",
            max(by_ours_map), max(by_pool_map), "item/s", ratio_at_least(0.7)),
        Row("processes", "map.throughput_executor",
            f"map(fn, {m} items, chunksize={MAP_CHUNKSIZE}) vs ProcessPoolExecutor.map",
            max(by_ours_map), max(by_executor_map), "item/s"),
    ]  # fmt: skip

    # c. single-command round trips
    ours_latency, stdlib_latency = _alternate(
        [
            _round_trips(ours, lambda ex, command: ex.submit(command), settings),
            _round_trips(stdlib, lambda ex, _: ex.submit(bench.noop), settings),
        ],
        settings.rounds,
    )
    ours_median, ours_p99 = _best_latency(ours_latency)
    stdlib_median, stdlib_p99 = _best_latency(stdlib_latency)
    rows += [
        Row("processes", "latency.median", "round trip submit(Command).result(), median",
            ours_median, stdlib_median, "us", ratio_at_most(1.5)),
        Row("processes", "latency.p99", "round trip submit(Command).result(), p99",
            ours_p99, stdlib_p99, "us", ratio_at_most(1.5)),
    ]  # fmt: skip

    # d. CPU-bound commands: wall time against the ideal of perfect spreading
    iterations = _calibrate_spin(settings.cpu_seconds)
    ideal = settings.cpu_commands * settings.cpu_seconds / WORKERS

    def cpu_side(make: Callable[[], E], submit: Callable[[E], Future[Any]]) -> Callable[[], float]:
        def side() -> float:
            with make() as executor:
                concurrent.futures.wait([executor.submit(bench.noop) for _ in range(100)])  # warm-up
                with _timed_section(settings):
                    start = time.perf_counter()
                    concurrent.futures.wait([submit(executor) for _ in range(settings.cpu_commands)])
                    elapsed = time.perf_counter() - start
            return elapsed

        return side

    ours_wall, stdlib_wall = _alternate(
        [
            cpu_side(ours, lambda ex: ex.submit(Command("spin", iterations))),
            cpu_side(stdlib, lambda ex: ex.submit(bench.spin, iterations)),
        ],
        settings.rounds,
    )
    within = 1.15
    rows.append(
        Row("processes", "cpu.wall",
            f"wall, {settings.cpu_commands} x spin(~{settings.cpu_seconds:g} s) on {WORKERS} workers "
            f"(ideal {ideal:.2f} s)",
            min(ours_wall), min(stdlib_wall), "s",
            Target(f"<= {within:g}x ideal ({within * ideal:.2f} s)", lambda ours, _s, _o: ours <= within * ideal)),
    )  # fmt: skip
    return rows


Case = Callable[[Settings], list[Row]]

CASES: dict[str, Case] = {
    "threads": threads_case,
    "inline": inline_case,
    "processes": processes_case,
}
"""Executor kind -> the function measuring its rows; a new kind adds one entry."""

STDLIB_COUNTERPARTS: dict[str, str] = {
    "threads": "concurrent.futures.ThreadPoolExecutor(max_workers=2).submit(noop)",
    "inline": "a direct call noop()",
    "processes": (
        f"concurrent.futures.ProcessPoolExecutor(max_workers={WORKERS}, mp_context={default_start_method()!r}) "
        f"(submit, map, round trips, wall) and multiprocessing.Pool({WORKERS}) (map); every side has "
        f"{WORKERS} workers and ours' default start method, each pool started and warmed up before timing"
    ),
}
"""Executor kind -> what its rows are compared with, for the table's legend."""


# -- running and reporting ------------------------------------------------------


def run(settings: Settings, kinds: Sequence[str] | None = None) -> list[Row]:
    """Measure the cases of *kinds* (default: all of :data:`CASES`) and return their rows."""
    rows: list[Row] = []
    for kind in dict.fromkeys(kinds or CASES):
        rows += CASES[kind](settings)
    return rows


def _format_value(value: float, unit: str) -> str:
    if unit.endswith("/s"):
        return f"{value:,.0f}"
    if unit == "s":
        return f"{value:,.3f}"
    return f"{value:,.2f}"


def format_table(rows: Sequence[Row], settings: Settings) -> str:
    """Render *rows* as a plain-text table with a legend."""
    header: tuple[str, ...] = ("executor", "metric", "unit", "ours", "stdlib", "ours/stdlib")
    header += ("overhead", "target", "met")
    lines: list[tuple[str, ...]] = [header]
    for row in rows:
        met = row.met
        lines.append(
            (
                row.executor,
                row.label,
                row.unit,
                _format_value(row.ours, row.unit),
                _format_value(row.stdlib, row.unit),
                f"{row.ratio:.2f}x",
                f"{row.overhead_us:+.2f} us",
                row.target.text if row.target is not None else "-",
                "-" if met is None else ("yes" if met else "NO"),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    right = {3, 4, 5, 6}
    text = [
        "  ".join(
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in lines
    ]
    text.insert(1, "  ".join("-" * w for w in widths))
    kinds = dict.fromkeys(row.executor for row in rows)
    gc_state = "off" if settings.gc_off else "on"
    legend = [
        "",
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs; "
        f"{settings.commands:,} commands, {settings.samples:,} round trips; best of "
        f"{settings.rounds} alternating rounds; gc {gc_state} while timing.",
        "overhead: extra microseconds per command vs stdlib (cmd/s and item/s rows: 1e6/ours - 1e6/stdlib, "
        "per item; s rows: of the whole wall time).",
    ]
    legend += [f"stdlib for {kind}: {STDLIB_COUNTERPARTS.get(kind, '?')}" for kind in kinds]
    return "\n".join(text + legend)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark from the command line; return the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m commandexec.bench",
        description="Measure each executor kind side by side with its stdlib counterpart.",
    )
    parser.add_argument("--quick", action="store_true", help="a short smoke run, not a measurement")
    parser.add_argument("--json", action="store_true", help="print the rows as a JSON list")
    parser.add_argument(
        "--only", action="append", choices=sorted(CASES), metavar="KIND",
        help=f"run only this executor kind's rows (repeatable; one of {', '.join(CASES)})",
    )  # fmt: skip
    parser.add_argument("--commands", type=int, help="commands per throughput measurement")
    parser.add_argument("--samples", type=int, help="round trips per latency measurement")
    parser.add_argument("--rounds", type=int, help="alternating rounds per comparison")
    parser.add_argument("--gc-off", action="store_true", help="disable the collector while timing")
    args = parser.parse_args(argv)

    settings = QUICK if args.quick else Settings()
    overrides = {name: getattr(args, name) for name in ("commands", "samples", "rounds")}
    for name, value in overrides.items():
        if value is not None and value < 1:
            parser.error(f"--{name} must be at least 1, got {value}")
    settings = dataclasses.replace(
        settings, gc_off=args.gc_off, **{k: v for k, v in overrides.items() if v is not None}
    )
    rows = run(settings, args.only)
    if args.json:
        json.dump([row.to_dict() for row in rows], sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(format_table(rows, settings))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
