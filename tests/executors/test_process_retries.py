"""A command whose worker process dies is run again when its options allow retries."""

from __future__ import annotations

from pathlib import Path

import pytest

import commandexec as ce
from tests.contract.test_events import Recorder


@pytest.mark.time_limit(60)
def test_a_command_whose_worker_died_is_retried_on_a_new_worker(registry: ce.Registry, tmp_path: Path) -> None:
    counter = tmp_path / "calls"
    command = ce.Command("flaky", str(counter), 1, "exit").with_options(retries=1, retry_backoff=0.01)
    with ce.ProcessExecutor(2, registry=registry) as executor:
        retrying = Recorder()
        executor.events.subscribe("command.retrying", retrying)
        assert executor.submit(command).result(timeout=20) == "ok"
        assert isinstance(retrying.events[0].payload["error"], ce.WorkerLost)
    assert counter.read_text() == "2"


@pytest.mark.time_limit(60)
def test_without_retries_a_lost_worker_fails_the_command(registry: ce.Registry, tmp_path: Path) -> None:
    command = ce.Command("flaky", str(tmp_path / "calls"), 1, "exit")
    with ce.ProcessExecutor(2, registry=registry) as executor:
        with pytest.raises(ce.WorkerLost, match="exit code 3"):
            executor.submit(command).result(timeout=20)
        assert executor.submit("add", 1, 1).result(timeout=20) == 2
