"""The error hierarchy: one root, familiar builtin bases, and errors that pickle."""

from __future__ import annotations

import concurrent.futures
import copy
import pickle
from typing import Any

import pytest

import commandexec as ce
from commandexec import errors

ALL_ERRORS = [getattr(errors, name) for name in errors.__all__]


def _example(error_type: type[ce.CommandExecError]) -> ce.CommandExecError:
    """An instance of *error_type* built as commandexec builds it."""
    if error_type is ce.UnknownCommand:
        return ce.UnknownCommand("resise", ["resize", "rotate"])
    if error_type is ce.RemoteCommandError:
        return ce.RemoteCommandError("mylib.Oops", "it broke", "Traceback (most recent call last):")
    return error_type(f"{error_type.__name__} happened")


@pytest.mark.parametrize("error_type", ALL_ERRORS, ids=lambda t: t.__name__)
def test_every_error_derives_from_command_exec_error(error_type: type[Exception]) -> None:
    assert issubclass(error_type, ce.CommandExecError)
    assert issubclass(error_type, Exception)


@pytest.mark.parametrize("name", errors.__all__)
def test_every_error_is_exported_from_the_package(name: str) -> None:
    assert name in ce.__all__
    assert getattr(ce, name) is getattr(errors, name)


@pytest.mark.parametrize("error_type", ALL_ERRORS, ids=lambda t: t.__name__)
def test_every_error_has_a_raised_when_docstring(error_type: type[Exception]) -> None:
    assert (error_type.__doc__ or "").startswith("Raised ")


@pytest.mark.parametrize(
    ("error_type", "builtin"),
    [
        (ce.ConfigError, ValueError),
        (ce.InvalidCommand, ValueError),
        (ce.DuplicateCommand, ValueError),
        (ce.UnknownCommand, LookupError),
        (ce.CommandTimeout, TimeoutError),
        (ce.CommandTimeout, concurrent.futures.TimeoutError),
        (ce.BrokenExecutor, concurrent.futures.BrokenExecutor),
        (ce.BrokenExecutor, RuntimeError),
        (ce.SerializationError, TypeError),
    ],
)
def test_errors_are_caught_by_the_builtin_they_stand_for(
    error_type: type[ce.CommandExecError], builtin: type[Exception]
) -> None:
    # Given code written against the standard library
    with pytest.raises(builtin) as caught:
        # When commandexec raises its own error
        raise _example(error_type)

    # Then the stdlib except clause catches it, and so does the root
    assert isinstance(caught.value, ce.CommandExecError)


def test_a_command_timeout_keeps_its_message() -> None:
    error = ce.CommandTimeout("command 'resize' ran past its 5 s timeout")

    assert str(error) == "command 'resize' ran past its 5 s timeout"


def test_unknown_command_names_the_key_and_close_matches() -> None:
    error = ce.UnknownCommand("resise", ["rotate", "resize", "compress"])

    assert error.key == "resise"
    assert error.suggestions == ["resize"]
    assert str(error) == "unknown command 'resise'; did you mean 'resize'?"


def test_unknown_command_offers_at_most_three_suggestions() -> None:
    error = ce.UnknownCommand("job", [f"job{i}" for i in range(10)])

    assert len(error.suggestions) == 3
    assert str(error).count(" or ") == 2


def test_unknown_command_lists_at_most_ten_keys_when_nothing_is_close() -> None:
    error = ce.UnknownCommand("zzz", [f"key{i:02}" for i in range(15)])

    message = str(error)
    assert error.suggestions == []
    assert "'key00'" in message
    assert "'key09'" in message
    assert "'key10'" not in message
    assert message.endswith(", ...")


def test_unknown_command_without_known_keys_says_the_registry_is_empty() -> None:
    assert str(ce.UnknownCommand("add")) == "unknown command 'add'; the registry is empty"


def test_remote_command_error_carries_type_name_message_and_traceback_text() -> None:
    error = ce.RemoteCommandError("mylib.Oops", "it broke", "Traceback ...\nmylib.Oops: it broke")

    assert (error.type_name, error.message) == ("mylib.Oops", "it broke")
    assert error.traceback_text.endswith("mylib.Oops: it broke")
    assert str(error) == "mylib.Oops: it broke"


def test_remote_command_error_traceback_text_is_optional() -> None:
    assert ce.RemoteCommandError("KeyError", "'x'").traceback_text == ""


def _assert_same_error(restored: BaseException, error: BaseException) -> None:
    assert type(restored) is type(error)
    assert str(restored) == str(error)
    assert restored.args == error.args
    assert getattr(restored, "__notes__", None) == getattr(error, "__notes__", None)


@pytest.mark.parametrize("error_type", ALL_ERRORS, ids=lambda t: t.__name__)
@pytest.mark.parametrize("protocol", [0, pickle.DEFAULT_PROTOCOL, pickle.HIGHEST_PROTOCOL])
def test_every_error_survives_pickle_with_its_message_and_notes(
    error_type: type[ce.CommandExecError], protocol: int
) -> None:
    # Given an error annotated on its way up (composites say which child failed)
    error = _example(error_type)
    error.add_note("in child 1 ('resize') of Sequential")

    # When it crosses a process boundary
    restored = pickle.loads(pickle.dumps(error, protocol))

    # Then
    _assert_same_error(restored, error)


def test_unknown_command_survives_pickle_with_its_attributes() -> None:
    error = ce.UnknownCommand("resise", ["resize", "rotate"])

    restored = pickle.loads(pickle.dumps(error))

    assert (restored.key, restored.suggestions) == ("resise", ["resize"])
    assert str(restored) == str(error)


def test_remote_command_error_survives_pickle_with_its_attributes() -> None:
    error = ce.RemoteCommandError("mylib.Oops", "it broke", "Traceback ...")

    restored = pickle.loads(pickle.dumps(error))

    assert (restored.type_name, restored.message, restored.traceback_text) == (
        "mylib.Oops",
        "it broke",
        "Traceback ...",
    )


class _RemoteSubclassError(ce.RemoteCommandError):
    """Raised in this test only: a subclass must pickle as itself."""


def test_a_remote_command_error_subclass_pickles_as_itself() -> None:
    error = _RemoteSubclassError("T", "m", "tb")

    restored = pickle.loads(pickle.dumps(error))

    assert type(restored) is _RemoteSubclassError
    assert restored.traceback_text == "tb"


def test_extra_attributes_set_on_an_error_survive_pickle() -> None:
    # Given errors that an executor annotated after construction
    errors_with_extras: list[Any] = [
        ce.UnknownCommand("x", ["y"]),
        ce.RemoteCommandError("T", "m"),
        ce.WorkerLost("worker 3 died"),
    ]
    for error in errors_with_extras:
        error.command_id = "abc-1"

    # Then each keeps it across pickle
    for error in errors_with_extras:
        assert pickle.loads(pickle.dumps(error)).command_id == "abc-1"


@pytest.mark.parametrize("error_type", ALL_ERRORS, ids=lambda t: t.__name__)
def test_every_error_survives_copy_and_deepcopy(error_type: type[ce.CommandExecError]) -> None:
    error = _example(error_type)

    _assert_same_error(copy.copy(error), error)
    _assert_same_error(copy.deepcopy(error), error)
