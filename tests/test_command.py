"""Command: an immutable value naming a registry key (or wrapping a callable)."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import enum
import json
import math
import os
import pickle
import re
import threading
from collections.abc import Mapping
from typing import Any

import pytest

import commandexec as ce
from commandexec.command import Options
from tests import handlers

# -- construction -------------------------------------------------------------


def test_a_command_holds_its_key_args_and_kwargs() -> None:
    # When
    command = ce.Command("resize", "a.png", width=64)

    # Then
    assert command.key == "resize"
    assert command.args == ("a.png",)
    assert dict(command.kwargs) == {"width": 64}
    assert command.fn is None


def test_args_are_a_tuple_and_kwargs_a_read_only_mapping() -> None:
    # Given
    command = ce.Command("resize", "a.png", width=64)

    # Then
    assert isinstance(command.args, tuple)
    assert isinstance(command.kwargs, Mapping)
    with pytest.raises(TypeError):
        command.kwargs["width"] = 128  # type: ignore[index]
    assert command.kwargs["width"] == 64


@pytest.mark.parametrize(
    "attribute",
    ["key", "fn", "args", "kwargs", "id", "options", "parent_id", "root_id", "depth"],
)
def test_no_public_attribute_can_be_reassigned_or_deleted(attribute: str) -> None:
    # Given
    command = ce.Command("resize", "a.png", width=64)
    before = getattr(command, attribute)

    # When / Then
    with pytest.raises(AttributeError):
        setattr(command, attribute, "changed")
    with pytest.raises(AttributeError):
        delattr(command, attribute)
    assert getattr(command, attribute) == before


def test_a_command_accepts_no_new_attributes() -> None:
    command = ce.Command("resize")

    with pytest.raises(AttributeError):
        command.extra = 1  # type: ignore[attr-defined]


def test_kwargs_named_like_options_or_attributes_go_to_the_callable() -> None:
    # When a callable's own keywords share names with the command's attributes
    command = ce.Command("job", key="k", id="i", timeout=5, retries=2, options={})

    # Then they are plain kwargs, and the command's options stay at their defaults
    assert dict(command.kwargs) == {"key": "k", "id": "i", "timeout": 5, "retries": 2, "options": {}}
    assert command.key == "job"
    assert command.options == Options()
    assert command.options.timeout is None


def test_a_new_command_has_default_options_and_no_cause() -> None:
    command = ce.Command("resize")

    assert command.options == Options()
    assert command.options.retries == 0
    assert command.parent_id is None
    assert command.depth == 0


@pytest.mark.parametrize("key", ["", 42, None, b"resize", 1.5, ["resize"]])
def test_the_key_must_be_a_non_empty_string_or_a_callable(key: Any) -> None:
    with pytest.raises(ce.InvalidCommand, match="key"):
        ce.Command(key)


def test_a_str_enum_member_names_a_key_and_is_stored_as_a_plain_string() -> None:
    # Given keys kept in an enum
    class Keys(enum.StrEnum):
        RESIZE = "resize"

    # When
    command = ce.Command(Keys.RESIZE, "a.png")

    # Then the key is the plain string: it pickles and serialises without the enum
    assert command.key == "resize"
    assert type(command.key) is str
    assert command.to_dict()["key"] == "resize"
    assert type(command.to_dict()["key"]) is str


def test_a_command_can_wrap_a_plain_callable() -> None:
    # When
    command = ce.Command(handlers.add, 1, b=2)

    # Then
    assert command.fn is handlers.add
    assert command.key == "tests.handlers:add"
    assert command.args == (1,)
    assert dict(command.kwargs) == {"b": 2}


def test_a_wrapped_callable_object_is_named_by_its_type() -> None:
    command = ce.Command(handlers.Multiplier(3), 2)

    assert command.key == "tests.handlers:Multiplier"


def test_a_wrapped_bound_method_is_named_by_its_qualified_name() -> None:
    command = ce.Command(handlers.Multiplier(3).times, 2)

    assert command.key == "tests.handlers:Multiplier.times"


# -- ids ----------------------------------------------------------------------


def test_every_command_gets_a_unique_id() -> None:
    # When
    ids = [ce.Command("noop").id for _ in range(10_000)]

    # Then
    assert len(set(ids)) == len(ids)
    assert all(isinstance(i, str) and i for i in ids)


def test_the_id_is_stable_for_the_life_of_a_command() -> None:
    command = ce.Command("noop")

    assert command.id == command.id


def test_ids_stay_unique_when_commands_are_built_on_many_threads() -> None:
    # Given
    results: list[list[str]] = [[] for _ in range(8)]
    start = threading.Barrier(len(results), timeout=10)

    def build(out: list[str]) -> None:
        start.wait()
        out.extend(ce.Command("noop").id for _ in range(2_000))

    threads = [threading.Thread(target=build, args=(out,)) for out in results]

    # When
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    # Then
    assert not any(thread.is_alive() for thread in threads)
    ids = [i for out in results for i in out]
    assert len(ids) == 16_000
    assert len(set(ids)) == len(ids)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
# The conftest's faulthandler watchdog is a second OS thread; the child only writes
# to a pipe and calls os._exit, so forking is safe despite the 3.12+ warning.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_never_repeats_its_parents_ids() -> None:
    # Given a parent that has handed out ids
    assert ce.Command("noop").id
    read_fd, write_fd = os.pipe()

    # When parent and child each build their next command
    pid = os.fork()
    if pid == 0:  # the child: report one id and leave without running any cleanup
        try:
            os.close(read_fd)
            os.write(write_fd, ce.Command("noop").id.encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    try:
        child_id = os.read(read_fd, 256).decode()
    finally:
        os.close(read_fd)
        os.waitpid(pid, 0)
    parent_id = ce.Command("noop").id

    # Then the two counters are in step, but the ids still differ
    assert child_id
    assert child_id != parent_id


# -- options ------------------------------------------------------------------


def test_with_options_returns_a_copy_with_the_same_id_args_and_kwargs() -> None:
    # Given
    command = ce.Command("resize", "a.png", width=64)

    # When
    timed = command.with_options(timeout=5, retries=2)

    # Then
    assert timed is not command
    assert (timed.id, timed.key, timed.args, dict(timed.kwargs)) == (
        command.id,
        "resize",
        ("a.png",),
        {"width": 64},
    )
    assert timed.options.timeout == 5
    assert timed.options.retries == 2


def test_with_options_leaves_the_original_unchanged() -> None:
    command = ce.Command("resize")

    command.with_options(timeout=5)

    assert command.options.timeout is None


def test_with_options_calls_can_be_chained_and_keep_earlier_options() -> None:
    command = ce.Command("resize").with_options(timeout=5).with_options(retries=3)

    assert command.options.timeout == 5
    assert command.options.retries == 3


def test_every_option_can_be_set() -> None:
    # When
    command = ce.Command("resize").with_options(
        timeout=1.5,
        retries=4,
        retry_backoff=0.5,
        retry_backoff_max=10,
        retry_jitter=0.0,
        retry_on=(ValueError, "OSError"),
    )

    # Then
    assert command.options == Options(
        timeout=1.5,
        retries=4,
        retry_backoff=0.5,
        retry_backoff_max=10,
        retry_jitter=0.0,
        retry_on=(ValueError, "OSError"),
    )


def test_an_unknown_option_is_rejected_with_a_suggestion() -> None:
    with pytest.raises(ce.InvalidCommand, match=r"unknown command option 'timout'.*'timeout'"):
        ce.Command("resize").with_options(timout=5)


def test_an_unknown_option_far_from_any_name_lists_the_options() -> None:
    with pytest.raises(ce.InvalidCommand) as caught:
        ce.Command("resize").with_options(priority=1)

    message = str(caught.value)
    assert "'priority'" in message
    for name in ("timeout", "retries", "retry_backoff", "retry_on"):
        assert name in message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("timeout", 0),
        ("timeout", -1),
        ("timeout", "5"),
        ("timeout", True),
        ("timeout", math.nan),
        ("timeout", math.inf),
        ("retries", -1),
        ("retries", 1.5),
        ("retries", True),
        ("retries", "2"),
        ("retries", None),
        ("retry_backoff", -0.1),
        ("retry_backoff", None),
        ("retry_backoff_max", "x"),
        ("retry_backoff_max", math.inf),
        ("retry_jitter", 1.5),
        ("retry_jitter", -0.1),
        ("retry_on", 5),
        ("retry_on", None),
        ("retry_on", [42]),
        ("retry_on", [int]),
        ("retry_on", object()),
    ],
)
def test_an_invalid_option_value_is_rejected_naming_the_option(name: str, value: Any) -> None:
    with pytest.raises(ce.InvalidCommand, match=name):
        ce.Command("resize").with_options(**{name: value})


def test_a_rejected_option_value_leaves_no_half_built_command() -> None:
    command = ce.Command("resize").with_options(timeout=5)

    with pytest.raises(ce.InvalidCommand):
        command.with_options(timeout=1, retries=-1)

    assert command.options.timeout == 5
    assert command.options.retries == 0


@pytest.mark.parametrize(
    "given",
    [ValueError, "ValueError", [ValueError], (ValueError, "tests.handlers.HandlerError")],
)
def test_retry_on_takes_one_or_many_types_or_names_and_stores_a_tuple(given: Any) -> None:
    command = ce.Command("resize").with_options(retry_on=given)

    assert isinstance(command.options.retry_on, tuple)
    assert command.options.retry_on[0] in (ValueError, "ValueError")


def test_options_are_frozen() -> None:
    options = ce.Command("resize").with_options(timeout=5).options

    with pytest.raises(dataclasses.FrozenInstanceError):
        options.timeout = 10  # type: ignore[misc]


def test_options_to_dict_lists_only_changed_options_with_types_as_names() -> None:
    options = Options(timeout=5, retry_on=(ValueError, handlers.HandlerError))

    assert options.to_dict() == {
        "timeout": 5,
        "retry_on": ["ValueError", "tests.handlers.HandlerError"],
    }
    assert Options().to_dict() == {}


# -- causation ----------------------------------------------------------------


def test_a_root_command_is_its_own_root() -> None:
    command = ce.Command("resize")

    assert command.root_id == command.id
    assert command.parent_id is None
    assert command.depth == 0


def test_caused_by_records_parent_root_and_depth() -> None:
    # Given
    parent = ce.Command("upload", "a.png")

    # When
    child = ce.Command("resize", "a.png").caused_by(parent)

    # Then
    assert child.parent_id == parent.id
    assert child.root_id == parent.id
    assert child.depth == 1


def test_a_chain_of_causes_keeps_the_first_root_and_counts_depth() -> None:
    # Given
    root = ce.Command("upload")
    command = root

    # When
    for _ in range(5):
        command = ce.Command("step").caused_by(command)

    # Then
    assert command.root_id == root.id
    assert command.depth == 5


def test_caused_by_keeps_the_commands_own_id_args_and_options_and_the_original() -> None:
    # Given
    parent = ce.Command("upload")
    command = ce.Command("resize", "a.png", width=64).with_options(timeout=5)

    # When
    child = command.caused_by(parent)

    # Then
    assert (child.id, child.args, dict(child.kwargs)) == (command.id, ("a.png",), {"width": 64})
    assert child.options.timeout == 5
    assert command.parent_id is None
    assert command.depth == 0


def test_options_set_after_causation_keep_the_causation() -> None:
    parent = ce.Command("upload")

    child = ce.Command("resize").caused_by(parent).with_options(retries=1)

    assert (child.parent_id, child.root_id, child.depth) == (parent.id, parent.id, 1)


# -- repr and equality --------------------------------------------------------


def test_repr_shows_key_arguments_and_id() -> None:
    command = ce.Command("resize", "a.png", width=64)

    assert repr(command) == f"Command('resize', 'a.png', width=64, id={command.id!r})"


def test_repr_shows_options_that_differ_from_defaults() -> None:
    command = ce.Command("resize", "a.png").with_options(timeout=5, retry_on=ValueError)

    assert repr(command) == (
        f"Command('resize', 'a.png', id={command.id!r}).with_options(timeout=5, retry_on=['ValueError'])"
    )


def test_repr_shortens_long_arguments() -> None:
    command = ce.Command("store", "x" * 10_000, data=list(range(10_000)))

    text = repr(command)

    assert len(text) < 200
    assert text.startswith("Command('store', 'xxx")
    assert "..." in text


def test_repr_of_a_wrapped_callable_names_it() -> None:
    command = ce.Command(handlers.add, 1)

    assert re.fullmatch(r"Command\(tests\.handlers:add, 1, id='[^']+'\)", repr(command))


def test_a_command_equals_its_copies_and_hashes_alike() -> None:
    # Given
    command = ce.Command("resize", "a.png", width=64)

    # Then
    assert command == copy.copy(command) == copy.deepcopy(command)
    assert hash(command) == hash(copy.copy(command))
    assert len({command, copy.copy(command)}) == 1


def test_commands_with_the_same_arguments_but_different_ids_differ() -> None:
    assert ce.Command("resize", "a.png") != ce.Command("resize", "a.png")


def test_a_copy_with_other_options_or_a_cause_is_not_equal() -> None:
    command = ce.Command("resize")

    assert command.with_options(timeout=5) != command
    assert command.caused_by(ce.Command("upload")) != command


def test_a_command_is_not_equal_to_other_types() -> None:
    command = ce.Command("resize")

    assert command != "resize"
    assert command != command.to_dict()


# -- pickle -------------------------------------------------------------------


def _full_command() -> ce.Command:
    parent = ce.Command("upload", "a.png")
    return (
        ce.Command("resize", "a.png", (1, 2), width=64, meta={"tags": ["x"]})
        .with_options(timeout=2.5, retries=3, retry_on=(ValueError, "OSError"))
        .caused_by(parent)
    )


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_a_command_round_trips_through_pickle(protocol: int) -> None:
    # Given
    command = _full_command()

    # When
    restored = pickle.loads(pickle.dumps(command, protocol))

    # Then every attribute survives, including id, options and causation
    assert restored == command
    assert restored.id == command.id
    assert restored.args == ("a.png", (1, 2))
    assert restored.options == command.options
    assert (restored.parent_id, restored.root_id, restored.depth) == (
        command.parent_id,
        command.root_id,
        1,
    )


def test_a_command_wrapping_a_module_level_function_round_trips_through_pickle() -> None:
    command = ce.Command(handlers.add, 1, b=2)

    restored = pickle.loads(pickle.dumps(command))

    assert restored == command
    assert restored.fn is handlers.add


def test_a_command_wrapping_a_lambda_cannot_be_pickled() -> None:
    command = ce.Command(lambda: None)

    with pytest.raises((pickle.PicklingError, AttributeError)):
        pickle.dumps(command)


def test_a_restored_command_is_still_immutable_and_derivable() -> None:
    restored = pickle.loads(pickle.dumps(ce.Command("resize")))

    with pytest.raises(AttributeError):
        restored.key = "other"
    assert restored.with_options(timeout=1).id == restored.id


# -- to_dict / from_dict ------------------------------------------------------


def test_to_dict_describes_the_command_as_plain_data() -> None:
    command = ce.Command("resize", "a.png", width=64)

    assert command.to_dict() == {
        "key": "resize",
        "args": ["a.png"],
        "kwargs": {"width": 64},
        "id": command.id,
    }


def test_to_dict_includes_options_and_causation_when_set() -> None:
    # Given
    parent = ce.Command("upload")
    command = ce.Command("resize").with_options(timeout=5, retry_on=ValueError).caused_by(parent)

    # When
    data = command.to_dict()

    # Then
    assert data["options"] == {"timeout": 5, "retry_on": ["ValueError"]}
    assert (data["parent_id"], data["root_id"], data["depth"]) == (parent.id, parent.id, 1)


def test_to_dict_refuses_a_wrapped_callable_and_says_to_register_it() -> None:
    command = ce.Command(handlers.add, 1)

    with pytest.raises(ce.InvalidCommand, match=r"tests\.handlers:add.*register"):
        command.to_dict()


@pytest.mark.parametrize(
    "command",
    [
        ce.Command("noop"),
        ce.Command("resize", "a.png", width=64),
        ce.Command("store", [1, 2.5, None, True], {"nested": {"deep": ["é", "中"]}}, flag=False),
        ce.Command("retry").with_options(timeout=3, retries=2, retry_backoff=1, retry_jitter=0, retry_on="ValueError"),
        ce.Command("child", 1).caused_by(ce.Command("step").caused_by(ce.Command("root"))),
    ],
    ids=["bare", "args-and-kwargs", "nested-values", "options", "caused"],
)
def test_a_json_able_command_round_trips_through_to_dict_and_json(command: ce.Command) -> None:
    # When
    text = json.dumps(command.to_dict())
    restored = ce.Command.from_dict(json.loads(text))

    # Then
    assert restored == command
    assert restored.id == command.id
    assert restored.root_id == command.root_id


def test_retry_on_types_travel_as_their_names() -> None:
    command = ce.Command("retry").with_options(retry_on=(ValueError, handlers.HandlerError))

    restored = ce.Command.from_dict(command.to_dict())

    assert restored.options.retry_on == ("ValueError", "tests.handlers.HandlerError")


def test_from_dict_needs_only_a_key_and_gives_a_fresh_id() -> None:
    # When
    first = ce.Command.from_dict({"key": "noop"})
    second = ce.Command.from_dict({"key": "noop"})

    # Then
    assert (first.key, first.args, dict(first.kwargs)) == ("noop", (), {})
    assert first.id != second.id
    assert first.root_id == first.id


def test_from_dict_accepts_an_explicit_root_with_no_cause() -> None:
    command = ce.Command.from_dict({"key": "noop", "parent_id": None, "root_id": None, "depth": 0})

    assert command.parent_id is None
    assert command.depth == 0


def test_a_command_from_dict_does_not_share_its_top_level_containers() -> None:
    # Given
    data: dict[str, Any] = {"key": "resize", "args": ["a.png"], "kwargs": {"width": 64}}
    command = ce.Command.from_dict(data)

    # When the caller reuses its dict
    data["args"].append("b.png")
    data["kwargs"]["width"] = 1

    # Then the command is unchanged
    assert command.args == ("a.png",)
    assert command.kwargs["width"] == 64


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({}, "'key'"),
        ({"key": ""}, "'key'"),
        ({"key": 5}, "'key'"),
        ({"key": None}, "'key'"),
        ({"key": "k", "args": "a.png"}, "'args'"),
        ({"key": "k", "args": {"a": 1}}, "'args'"),
        ({"key": "k", "kwargs": []}, "'kwargs'"),
        ({"key": "k", "kwargs": {1: "x"}}, "'kwargs'"),
        ({"key": "k", "id": 7}, "'id'"),
        ({"key": "k", "id": ""}, "'id'"),
        ({"key": "k", "id": None}, "'id'"),
        ({"key": "k", "options": []}, "'options'"),
        ({"key": "k", "options": None}, "'options'"),
        ({"key": "k", "options": {1: 2}}, "'options'"),
        ({"key": "k", "options": {"timout": 5}}, "'timeout'"),
        ({"key": "k", "options": {"timeout": "5"}}, "timeout"),
        ({"key": "k", "options": {"timeout": -1}}, "timeout"),
        ({"key": "k", "options": {"retries": 1.5}}, "retries"),
        ({"key": "k", "options": {"retry_on": "ValueError"}}, "retry_on"),
        ({"key": "k", "options": {"retry_on": [1]}}, "retry_on"),
        ({"key": "k", "parent_id": 5, "root_id": "r", "depth": 1}, "'parent_id'"),
        ({"key": "k", "parent_id": "p", "root_id": 5, "depth": 1}, "'root_id'"),
        ({"key": "k", "parent_id": "p", "depth": 1}, "'root_id'"),
        ({"key": "k", "parent_id": "p", "root_id": "r"}, "'depth'"),
        ({"key": "k", "parent_id": "p", "root_id": "r", "depth": 0}, "'depth'"),
        ({"key": "k", "parent_id": "p", "root_id": "r", "depth": "1"}, "'depth'"),
        ({"key": "k", "parent_id": "p", "root_id": "r", "depth": True}, "'depth'"),
        ({"key": "k", "depth": 3}, "'depth'"),
        ({"key": "k", "root_id": "r"}, "'root_id'"),
        ({"key": "k", "fn": "os:system"}, "'fn'"),
        ({"key": "k", "Key": "x"}, "'Key'"),
    ],
)
def test_from_dict_rejects_bad_data_naming_the_field(data: dict[Any, Any], field: str) -> None:
    with pytest.raises(ce.InvalidCommand) as caught:
        ce.Command.from_dict(data)

    assert field in str(caught.value)


@pytest.mark.parametrize("data", [None, "resize", 5, ["resize"], b"{}"])
def test_from_dict_rejects_anything_but_a_mapping(data: Any) -> None:
    with pytest.raises(ce.InvalidCommand, match="mapping"):
        ce.Command.from_dict(data)


_JUNK: list[Any] = [
    None, True, 0, -1, 1.5, math.nan, "", "x", [], [None], ["x"], {}, {"a": 1},
    {1: 2}, {None: 1}, {"timeout": [1]}, {"retry_on": [None]}, [[1]],
]  # fmt: skip


@pytest.mark.parametrize(
    "field",
    ["key", "args", "kwargs", "id", "options", "parent_id", "root_id", "depth", 1, None],
)
def test_from_dict_answers_any_junk_with_a_command_or_invalid_command(field: Any) -> None:
    # Given data that may come from the network: every junk value in every field
    for junk in _JUNK:
        for base in ({"key": "k"}, {"key": "k", "parent_id": "p", "root_id": "r", "depth": 1}):
            data = {**base, field: junk}

            # When / Then nothing but InvalidCommand escapes
            try:
                command = ce.Command.from_dict(data)
            except ce.InvalidCommand:
                continue
            assert isinstance(command, ce.Command)


def test_from_dict_answers_junk_options_with_invalid_command_only() -> None:
    for name in ("timeout", "retries", "retry_backoff", "retry_backoff_max", "retry_jitter"):
        for junk in _JUNK:
            with contextlib.suppress(ce.InvalidCommand):
                ce.Command.from_dict({"key": "k", "options": {name: junk}})
