"""The command line, run as users run it: through subprocesses."""

from __future__ import annotations

import subprocess
import sys

import pytest


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "commandexec", *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("kind", ["inline", "threads"])
def test_the_demo_hashes_and_compresses_files_and_reports(kind: str) -> None:
    result = run("demo", "--executor", kind, "--files", "3")
    assert result.returncode == 0, result.stderr
    assert f"6 commands on the '{kind}' executor" in result.stdout
    assert "3 files," in result.stdout and "gzipped" in result.stdout
    assert len([line for line in result.stdout.splitlines() if line.startswith("file-")]) == 3


def test_the_demo_rejects_an_unknown_executor_kind() -> None:
    result = run("demo", "--executor", "thread")
    assert result.returncode == 2
    assert "invalid choice: 'thread'" in result.stderr


def test_help_lists_the_subcommands() -> None:
    result = run("--help")
    assert result.returncode == 0
    assert "demo" in result.stdout and "bench" in result.stdout


def test_a_missing_subcommand_is_a_usage_error() -> None:
    result = run()
    assert result.returncode == 2
    assert "required" in result.stderr
