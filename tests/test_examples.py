"""Every script in examples/ runs to completion: examples are tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.py"))


@pytest.mark.time_limit(90)
@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_the_example_runs_and_exits_zero(script: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=80, cwd=script.parent
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip(), "an example should show what it did"


def test_there_are_examples() -> None:
    assert EXAMPLES


@pytest.mark.time_limit(120)
def test_the_event_pipeline_prints_the_same_on_every_executor_kind() -> None:
    script = next(p for p in EXAMPLES if p.name == "event_pipeline.py")
    outputs = {}
    for kind in ("inline", "threads", "processes"):
        env = {**os.environ, "COMMANDEXEC_EXECUTOR": kind}
        result = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, timeout=100, cwd=script.parent, env=env
        )
        assert result.returncode == 0, f"{kind}: {result.stderr}"
        outputs[kind] = result.stdout
    assert outputs["inline"] == outputs["threads"] == outputs["processes"]
    assert "8 files indexed" in outputs["inline"]
