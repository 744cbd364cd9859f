"""What a process executor needs from its registry is checked when it is built."""

from __future__ import annotations

import pytest

import commandexec as ce
from tests import handlers


def test_a_registry_with_a_lambda_is_refused_at_construction_naming_the_key() -> None:
    registry = ce.Registry()
    registry.register("add", handlers.add)
    registry.register("inline_lambda", lambda: 1)
    with pytest.raises(ce.SerializationError, match=r"'inline_lambda'.*pkg\.module:attr"):
        ce.ProcessExecutor(1, registry=registry)


def test_the_fork_start_method_takes_any_registry_as_memory_is_inherited() -> None:
    registry = ce.Registry()
    registry.register("forty_two", lambda: 42)
    with ce.ProcessExecutor(1, registry=registry, mp_context="fork") as executor:
        assert executor.submit("forty_two").result(timeout=20) == 42
