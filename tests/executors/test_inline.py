"""InlineExecutor specifics: it runs in the caller, and strict mode's codecs."""

from __future__ import annotations

import asyncio
import threading

import pytest

import commandexec as ce
from tests import handlers


def test_a_command_runs_in_the_callers_thread(registry: ce.Registry) -> None:
    executor = ce.InlineExecutor(registry=registry)
    assert executor.submit("thread_name").result(timeout=0) == threading.current_thread().name


def test_errors_go_into_the_future_never_out_of_submit(registry: ce.Registry) -> None:
    future = ce.InlineExecutor(registry=registry).submit("fail", "inline")
    assert isinstance(future.exception(timeout=0), handlers.HandlerError)


def test_strict_pickle_mode_rejects_an_argument_a_worker_could_not_receive(registry: ce.Registry) -> None:
    executor = ce.InlineExecutor(registry=registry, strict=True)
    assert executor.strict == "pickle"
    future = executor.submit("echo", threading.Lock())
    with pytest.raises(ce.SerializationError, match="cannot be pickled for a worker process") as info:
        future.result(timeout=0)
    assert "echo" in str(info.value)


def test_strict_pickle_mode_rejects_a_callable_a_worker_could_not_import(registry: ce.Registry) -> None:
    future = ce.InlineExecutor(registry=registry, strict="pickle").submit(lambda: 1)
    with pytest.raises(ce.SerializationError, match="module-level function or a registry key"):
        future.result(timeout=0)


def test_strict_pickle_mode_rejects_an_unpicklable_result(registry: ce.Registry) -> None:
    future = ce.InlineExecutor(registry=registry, strict=True).submit(threading.Lock)
    with pytest.raises(ce.SerializationError, match=r"result .* cannot be pickled"):
        future.result(timeout=0)


def test_strict_json_mode_passes_what_a_remote_worker_would_receive(registry: ce.Registry) -> None:
    executor = ce.InlineExecutor(registry=registry, strict="json")
    # JSON has no tuples: the callable sees lists, exactly as on a remote worker.
    assert executor.submit("echo", (1, 2), x=(3,)).result(timeout=0) == {"args": [[1, 2]], "kwargs": {"x": [3]}}


def test_strict_json_mode_rejects_non_json_arguments_and_results(registry: ce.Registry) -> None:
    executor = ce.InlineExecutor(registry=registry, strict="json")
    with pytest.raises(ce.SerializationError, match="cannot be encoded as JSON"):
        executor.submit("echo", {1, 2}).result(timeout=0)
    with pytest.raises(ce.SerializationError, match=r"result .* cannot be encoded as JSON"):
        registry.register("make_set", lambda: {1, 2})
        executor.submit("make_set").result(timeout=0)


def test_strict_json_mode_rejects_a_wrapped_callable(registry: ce.Registry) -> None:
    future = ce.InlineExecutor(registry=registry, strict="json").submit(handlers.add, 1, 2)
    with pytest.raises(ce.CommandExecError, match="no registry key"):
        future.result(timeout=0)


def test_an_unknown_strict_codec_is_rejected(registry: ce.Registry) -> None:
    with pytest.raises(ValueError, match="unknown codec 'yaml'"):
        ce.InlineExecutor(registry=registry, strict="yaml")


def test_a_coroutine_command_runs_even_when_submitted_from_a_running_loop(registry: ce.Registry) -> None:
    executor = ce.InlineExecutor(registry=registry)

    async def main() -> int:
        result: int = executor.submit("async_add", 5, 6).result(timeout=5)
        return result

    assert asyncio.run(main()) == 11


def test_ctrl_c_inside_an_inline_command_reaches_the_caller(registry: ce.Registry) -> None:
    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ce.InlineExecutor(registry=registry).submit(interrupted)


def test_a_coroutine_run_from_a_running_loop_keeps_the_callers_context(registry: ce.Registry) -> None:
    executor = ce.InlineExecutor(registry=registry)

    async def read_context() -> str:
        return handlers.request_id.get()

    async def main() -> str:
        handlers.request_id.set("from the loop")
        result: str = executor.submit(read_context).result(timeout=5)
        return result

    assert asyncio.run(main()) == "from the loop"
