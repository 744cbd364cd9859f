"""The promise, proved: examples/configured_app.py prints the same wherever configuration sends it.

Each run changes only the environment: COMMANDEXEC_EXECUTOR picks a kind, or
COMMANDEXEC_CONFIG points at a routed configuration. The code never changes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parent.parent / "examples" / "configured_app.py"

ROUTED = """
    # cpu-bound word work in processes, digests on threads, index updates inline
    default_executor = "io"

    [executors.cpu]
    kind = "processes"
    max_workers = 2

    [executors.io]
    kind = "threads"
    max_workers = 4

    [executors.here]
    kind = "inline"

    [[routes]]
    pattern = "words.*"
    executor = "cpu"

    [[routes]]
    pattern = "index.*"
    executor = "here"
"""


def run(tmp_path: Path, **environment: str) -> subprocess.CompletedProcess[str]:
    """Run the app from an unrelated directory with only *environment* added to a clean environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMANDEXEC_")}
    env.update(environment)
    return subprocess.run(
        [sys.executable, str(APP)], capture_output=True, text=True, timeout=100, cwd=tmp_path, env=env
    )


@pytest.mark.time_limit(150)
def test_the_app_prints_the_same_on_every_kind_and_routed(tmp_path: Path) -> None:
    routed = tmp_path / "routed.toml"
    routed.write_text(textwrap.dedent(ROUTED))
    runs = {
        "file": ({}, "<ThreadExecutor"),
        "inline": ({"COMMANDEXEC_EXECUTOR": "inline"}, "<InlineExecutor"),
        "threads": ({"COMMANDEXEC_EXECUTOR": "threads"}, "<ThreadExecutor"),
        "processes": ({"COMMANDEXEC_EXECUTOR": "processes"}, "<ProcessExecutor"),
        "routed": (
            {"COMMANDEXEC_CONFIG": str(routed)},
            "<RoutedExecutor running: 'words.*' -> ProcessExecutor, 'index.*' -> InlineExecutor, "
            "default -> ThreadExecutor>",
        ),
    }
    outputs = {}
    for name, (environment, executor) in runs.items():
        result = run(tmp_path, **environment)
        assert result.returncode == 0, f"{name}: {result.stderr}"
        assert f"executor: {executor}" in result.stderr, f"{name} ran on the wrong executor: {result.stderr}"
        outputs[name] = result.stdout
    assert len(set(outputs.values())) == 1, outputs
    assert (
        "index: code.txt: 7 distinct; fox.txt: 8 distinct; rain.txt: 6 distinct; sea.txt: 7 distinct"
        in (outputs["file"])
    )


def test_a_misspelt_kind_in_the_environment_stops_the_app_with_a_clear_error(tmp_path: Path) -> None:
    result = run(tmp_path, COMMANDEXEC_EXECUTOR="proceses")
    assert result.returncode != 0
    assert result.stdout == ""
    assert (
        "ConfigError: environment variable COMMANDEXEC_EXECUTOR: executor is 'proceses', not a known executor "
        "kind (available: inline, threads, processes); did you mean 'processes'?"
    ) in result.stderr
