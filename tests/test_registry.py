"""Registry: keys to callables, eager or by lazy "package.module:attr" reference."""

from __future__ import annotations

import asyncio
import functools
import importlib
import inspect
import pickle
import sys
import textwrap
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import commandexec as ce
from commandexec.registry import registry as default_registry
from tests import handlers

MakeModule = Callable[[str], str]


@pytest.fixture
def make_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeModule]:
    """Write throwaway modules into tmp_path; return a unique importable name for each.

    sys.path and sys.modules are restored afterwards.
    """
    created: list[str] = []
    monkeypatch.syspath_prepend(str(tmp_path))

    def make(source: str) -> str:
        name = f"commandexec_throwaway_{uuid.uuid4().hex}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        importlib.invalidate_caches()
        created.append(name)
        return name

    yield make
    for name in created:
        sys.modules.pop(name, None)
    sys.path_importer_cache.pop(str(tmp_path), None)


def _logging_module(make_module: MakeModule, log: Path, body: str = "") -> str:
    """A module that appends a line to *log* each time its body runs."""
    return make_module(
        f"""
        with open({str(log)!r}, "a") as _log:
            _log.write("imported\\n")

        def main(x=1):
            return ("main", x)

        NOT_CALLABLE = 42

        class Tools:
            @staticmethod
            def shout(text):
                return text.upper()
        {body}
        """
    )


def _import_count(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


# -- registering ----------------------------------------------------------------


def test_register_then_resolve_returns_the_same_callable() -> None:
    # Given
    registry = ce.Registry()

    # When
    result = registry.register("add", handlers.add)

    # Then
    assert result is None
    assert registry.resolve("add") is handlers.add


def test_the_decorator_with_a_key_registers_and_returns_the_function_unchanged() -> None:
    registry = ce.Registry()

    @registry.register("sum-two")
    def add(a: int, b: int) -> int:
        return a + b

    assert registry.resolve("sum-two") is add
    assert add(1, 2) == 3
    assert "add" not in registry


def test_the_bare_decorator_uses_the_function_name_as_key() -> None:
    registry = ce.Registry()

    @registry.register
    def thumbnail(path: str) -> str:
        return path + ".thumb"

    assert registry.resolve("thumbnail") is thumbnail
    assert thumbnail("a") == "a.thumb"


def test_the_bare_form_can_be_called_with_replace() -> None:
    registry = ce.Registry()
    registry.register("add", handlers.square)

    returned = registry.register(handlers.add, replace=True)

    assert returned is handlers.add
    assert registry.resolve("add") is handlers.add


def test_a_callable_without_a_name_needs_an_explicit_key() -> None:
    registry = ce.Registry()

    with pytest.raises(ValueError, match="key"):
        registry.register(handlers.Multiplier(2))
    assert len(registry) == 0


@pytest.mark.parametrize(
    ("key", "target"),
    [
        ("function", handlers.add),
        ("lambda", lambda x: x + 1),
        ("bound method", handlers.Multiplier(2).times),
        ("callable object", handlers.Multiplier(3)),
        ("coroutine function", handlers.async_add),
        ("class", handlers.Multiplier),
        ("builtin", len),
        ("partial", functools.partial(handlers.add, 10)),
    ],
)
def test_every_kind_of_callable_can_be_registered(key: str, target: Any) -> None:
    registry = ce.Registry()

    registry.register(key, target)

    assert registry.resolve(key) is target


def test_registered_callables_run_as_themselves() -> None:
    # Given
    registry = ce.Registry()
    registry.register("double", handlers.Multiplier(2).times)
    registry.register("triple", handlers.Multiplier(3))
    registry.register("add-ten", functools.partial(handlers.add, 10))

    # Then
    assert registry.resolve("double")(4) == 8
    assert registry.resolve("triple")(4) == 12
    assert registry.resolve("add-ten")(5) == 15


def test_a_coroutine_function_is_kept_as_a_coroutine_function() -> None:
    registry = ce.Registry()

    registry.register("async_add", handlers.async_add)

    resolved = registry.resolve("async_add")
    assert inspect.iscoroutinefunction(resolved)
    assert asyncio.run(resolved(1, 2)) == 3


def test_a_duplicate_key_is_rejected_and_the_first_entry_kept() -> None:
    # Given
    registry = ce.Registry()
    registry.register("add", handlers.add)

    # When / Then
    with pytest.raises(ce.DuplicateCommand, match=r"'add'.*replace=True"):
        registry.register("add", handlers.square)
    assert registry.resolve("add") is handlers.add


def test_a_duplicate_is_rejected_whether_eager_or_lazy() -> None:
    registry = ce.Registry()
    registry.register("add", "tests.handlers:add")

    with pytest.raises(ce.DuplicateCommand):
        registry.register("add", handlers.add)
    with pytest.raises(ce.DuplicateCommand):
        registry.register("add", "tests.handlers:square")


def test_the_decorator_rejects_a_duplicate_key_too() -> None:
    registry = ce.Registry()
    registry.register("add", handlers.add)

    with pytest.raises(ce.DuplicateCommand):

        @registry.register("add")
        def other() -> None: ...

    assert registry.resolve("add") is handlers.add


def test_a_duplicate_command_error_is_a_value_error_and_a_command_exec_error() -> None:
    assert issubclass(ce.DuplicateCommand, ValueError)
    assert issubclass(ce.DuplicateCommand, ce.CommandExecError)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (handlers.add, handlers.square),
        (handlers.add, "tests.handlers:square"),
        ("tests.handlers:add", handlers.square),
        ("tests.handlers:add", "tests.handlers:square"),
    ],
)
def test_replace_true_overrides_an_entry_of_either_kind(first: Any, second: Any) -> None:
    # Given
    registry = ce.Registry()
    registry.register("k", first)

    # When
    registry.register("k", second, replace=True)

    # Then
    assert registry.resolve("k") is handlers.square
    assert len(registry) == 1


def test_replacing_a_resolved_lazy_entry_forgets_the_cached_callable() -> None:
    registry = ce.Registry()
    registry.register("k", "tests.handlers:add")
    assert registry.resolve("k") is handlers.add

    registry.register("k", "tests.handlers:square", replace=True)

    assert registry.resolve("k") is handlers.square


@pytest.mark.parametrize("target", [42, object(), [handlers.add], b"tests.handlers:add"])
def test_a_non_callable_is_rejected_at_registration_naming_the_key(target: Any) -> None:
    registry = ce.Registry()

    with pytest.raises(TypeError, match=r"'thing'.*not callable"):
        registry.register("thing", target)
    assert "thing" not in registry


@pytest.mark.parametrize(
    "reference",
    [
        "tests.handlers",
        "tests.handlers:",
        ":add",
        "tests..handlers:add",
        "tests.handlers:add-one",
        "1tests:add",
        "tests.handlers:add:more",
        "tests/handlers.py:add",
        "",
    ],
)
def test_a_malformed_reference_is_rejected_at_registration(reference: str) -> None:
    registry = ce.Registry()

    with pytest.raises(ValueError, match=r"package\.module:attr"):
        registry.register("k", reference)
    assert "k" not in registry


@pytest.mark.parametrize("key", ["", None, 42, b"add"])
def test_a_key_must_be_a_non_empty_string(key: Any) -> None:
    registry = ce.Registry()

    with pytest.raises(ValueError, match="key"):
        registry.register(key, handlers.add)
    assert len(registry) == 0


# -- unknown keys -------------------------------------------------------------


def test_unknown_key_names_close_matches() -> None:
    # Given
    registry = ce.Registry()
    for key in ("resize", "rotate", "compress"):
        registry.register(key, handlers.noop)

    # When
    with pytest.raises(ce.UnknownCommand) as caught:
        registry.resolve("resise")

    # Then
    assert caught.value.key == "resise"
    assert caught.value.suggestions == ["resize"]
    assert "did you mean 'resize'?" in str(caught.value)


def test_unknown_key_without_close_matches_lists_the_registered_keys() -> None:
    registry = ce.Registry()
    registry.register("resize", handlers.noop)
    registry.register("compress", "tests.handlers:noop")

    with pytest.raises(ce.UnknownCommand) as caught:
        registry.resolve("zzz")

    assert caught.value.suggestions == []
    assert "'compress'" in str(caught.value)
    assert "'resize'" in str(caught.value)


def test_unknown_key_in_an_empty_registry_says_it_is_empty() -> None:
    with pytest.raises(ce.UnknownCommand, match="empty"):
        ce.Registry().resolve("add")


def test_an_unknown_key_is_a_lookup_error() -> None:
    with pytest.raises(LookupError):
        ce.Registry().resolve("add")


def test_close_matches_include_lazy_references() -> None:
    registry = ce.Registry()
    registry.register("lazy_add", "tests.handlers:add")

    with pytest.raises(ce.UnknownCommand, match="'lazy_add'"):
        registry.resolve("lazy_ad")


# -- unregister, membership, iteration ------------------------------------------


def test_unregister_removes_a_key_of_either_kind() -> None:
    # Given
    registry = ce.Registry()
    registry.register("add", handlers.add)
    registry.register("lazy_add", "tests.handlers:add")
    registry.resolve("lazy_add")

    # When
    registry.unregister("add")
    registry.unregister("lazy_add")

    # Then
    assert len(registry) == 0
    with pytest.raises(ce.UnknownCommand):
        registry.resolve("lazy_add")


def test_unregistering_an_unknown_key_raises_unknown_command_with_suggestions() -> None:
    registry = ce.Registry()
    registry.register("resize", handlers.noop)

    with pytest.raises(ce.UnknownCommand, match="'resize'"):
        registry.unregister("resise")


def test_a_key_can_be_registered_again_after_unregister() -> None:
    registry = ce.Registry()
    registry.register("k", handlers.add)
    registry.unregister("k")

    registry.register("k", handlers.square)

    assert registry.resolve("k") is handlers.square


def test_membership_iteration_and_length_cover_eager_and_lazy_keys() -> None:
    # Given
    registry = ce.Registry()
    registry.register("b", handlers.add)
    registry.register("c", "tests.handlers:add")
    registry.register("a", handlers.Multiplier(2))

    # When a lazy key is resolved (so it is held both ways internally)
    registry.resolve("c")

    # Then each key counts once, in sorted order
    assert "a" in registry
    assert "c" in registry
    assert "z" not in registry
    assert 42 not in registry
    assert list(registry) == ["a", "b", "c"]
    assert registry.keys() == ["a", "b", "c"]
    assert len(registry) == 3
    assert repr(registry) == "<Registry with 3 command(s)>"


def test_the_fixture_registry_resolves_every_handler(registry: ce.Registry) -> None:
    assert registry.resolve("add")(2, 3) == 5
    assert registry.resolve("lazy_add")(2, 3) == 5
    assert registry.resolve("double")(4) == 8
    assert registry.resolve("triple")(4) == 12
    assert asyncio.run(registry.resolve("async_add")(2, 3)) == 5


def test_describe_returns_the_first_line_of_the_docstring(registry: ce.Registry) -> None:
    assert registry.describe("add") == "Add two numbers."
    assert registry.describe("noop") == ""


# -- lazy references ------------------------------------------------------------


def test_a_lazy_reference_is_not_imported_at_registration(make_module: MakeModule, tmp_path: Path) -> None:
    # Given a module that records each import
    log = tmp_path / "imports.log"
    name = _logging_module(make_module, log)
    registry = ce.Registry()

    # When it is registered by reference
    registry.register("main", f"{name}:main")

    # Then nothing is imported yet, but the key is known
    assert name not in sys.modules
    assert _import_count(log) == 0
    assert "main" in registry
    assert list(registry) == ["main"]


def test_a_lazy_reference_is_imported_on_first_resolve_and_only_once(make_module: MakeModule, tmp_path: Path) -> None:
    # Given
    log = tmp_path / "imports.log"
    name = _logging_module(make_module, log)
    registry = ce.Registry()
    registry.register("main", f"{name}:main")

    # When
    first = registry.resolve("main")
    second = registry.resolve("main")

    # Then
    assert first is second is sys.modules[name].main
    assert first(2) == ("main", 2)
    assert _import_count(log) == 1


def test_a_lazy_reference_may_name_a_nested_attribute(make_module: MakeModule, tmp_path: Path) -> None:
    name = _logging_module(make_module, tmp_path / "imports.log")
    registry = ce.Registry()

    registry.register("shout", f"{name}:Tools.shout")

    assert registry.resolve("shout")("hi") == "HI"


def test_a_lazy_reference_to_a_missing_module_fails_on_resolve_naming_the_key() -> None:
    # Given a reference that is well formed but names nothing
    registry = ce.Registry()
    registry.register("ghost", "commandexec_no_such_module_anywhere:main")

    # When / Then the failure comes at first use, naming key and reference
    with pytest.raises(ImportError, match=r"'ghost'.*commandexec_no_such_module_anywhere:main"):
        registry.resolve("ghost")
    assert "ghost" in registry


def test_a_lazy_reference_to_a_missing_attribute_fails_with_import_error() -> None:
    registry = ce.Registry()
    registry.register("ghost", "tests.handlers:no_such_handler")

    with pytest.raises(ImportError, match=r"'ghost'.*no_such_handler"):
        registry.resolve("ghost")


def test_a_lazy_reference_to_a_non_callable_fails_with_type_error(make_module: MakeModule, tmp_path: Path) -> None:
    name = _logging_module(make_module, tmp_path / "imports.log")
    registry = ce.Registry()
    registry.register("answer", f"{name}:NOT_CALLABLE")

    with pytest.raises(TypeError, match=r"'answer'.*not callable"):
        registry.resolve("answer")


def test_a_failed_lazy_import_is_retried_on_the_next_resolve(make_module: MakeModule, tmp_path: Path) -> None:
    # Given a reference to a module that does not exist yet
    name = make_module("raise ImportError('not yet')\n")
    registry = ce.Registry()
    registry.register("main", f"{name}:main")
    with pytest.raises(ImportError, match="not yet"):
        registry.resolve("main")

    # When the module is fixed
    (tmp_path / f"{name}.py").write_text("def main():\n    return 'fixed'\n")
    importlib.invalidate_caches()

    # Then the next resolve imports it
    assert registry.resolve("main")() == "fixed"


@pytest.mark.time_limit(10)
def test_a_lazily_imported_module_may_register_commands_itself(
    make_module: MakeModule,
) -> None:
    # Given a module that, like most, registers commands with a decorator at import
    helper_key = f"helper-{uuid.uuid4().hex}"
    main_key = f"main-{uuid.uuid4().hex}"
    name = make_module(
        f"""
        import commandexec

        @commandexec.registry.register({helper_key!r})
        def helper():
            return "helper"

        def main():
            return "main"
        """
    )
    try:
        ce.registry.register(main_key, f"{name}:main")

        # When the lazy key is resolved (this used to deadlock on the registry lock)
        main = ce.registry.resolve(main_key)

        # Then both commands are available
        assert main() == "main"
        assert ce.registry.resolve(helper_key)() == "helper"
    finally:
        for key in (main_key, helper_key):
            if key in ce.registry:
                ce.registry.unregister(key)


def test_threads_resolving_a_lazy_key_at_once_import_it_once_and_agree(make_module: MakeModule, tmp_path: Path) -> None:
    # Given
    log = tmp_path / "imports.log"
    name = _logging_module(make_module, log, body="import time; time.sleep(0.05)")
    registry = ce.Registry()
    registry.register("main", f"{name}:main")
    start = threading.Barrier(8, timeout=10)
    found: list[Any] = []

    def resolve() -> None:
        start.wait()
        found.append(registry.resolve("main"))

    threads = [threading.Thread(target=resolve) for _ in range(8)]

    # When
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    # Then
    assert not any(thread.is_alive() for thread in threads)
    assert len(found) == 8
    assert all(fn is found[0] for fn in found)
    assert _import_count(log) == 1


def test_registering_from_many_threads_loses_no_key() -> None:
    registry = ce.Registry()

    def register_many(offset: int) -> None:
        for i in range(200):
            registry.register(f"k{offset}-{i}", handlers.noop)

    threads = [threading.Thread(target=register_many, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert not any(thread.is_alive() for thread in threads)
    assert len(registry) == 1_600


# -- default registry and explicit instances ------------------------------------


def test_the_package_exposes_one_default_registry() -> None:
    # The package attribute is the registry instance (it shadows the submodule's name)
    assert isinstance(ce.registry, ce.Registry)
    assert ce.registry is default_registry
    assert ce.registry is sys.modules["commandexec.registry"].registry


def test_explicit_registries_are_independent_of_each_other_and_of_the_default() -> None:
    # Given
    first, second = ce.Registry(), ce.Registry()
    key = f"only-in-first-{uuid.uuid4().hex}"

    # When
    first.register(key, handlers.add)

    # Then
    assert key in first
    assert key not in second
    assert key not in ce.registry


# -- pickling -------------------------------------------------------------------


def test_a_registry_pickles_with_its_entries(registry: ce.Registry) -> None:
    # When
    restored = pickle.loads(pickle.dumps(registry))

    # Then
    assert list(restored) == list(registry)
    assert restored.resolve("add") is handlers.add
    assert restored.resolve("lazy_add") is handlers.add
    assert restored.resolve("double")(4) == 8
    assert restored.resolve("triple")(4) == 12


def test_lazy_references_travel_as_strings_even_after_being_resolved(make_module: MakeModule, tmp_path: Path) -> None:
    # Given a lazy entry that has been resolved, then its module forgotten
    log = tmp_path / "imports.log"
    name = _logging_module(make_module, log)
    registry = ce.Registry()
    registry.register("main", f"{name}:main")
    registry.register("add", handlers.add)
    registry.resolve("main")
    del sys.modules[name]

    # When the registry is pickled and restored
    restored = pickle.loads(pickle.dumps(registry))

    # Then the module was not imported by unpickling: the reference came as a string
    assert name not in sys.modules
    assert _import_count(log) == 1
    assert restored.resolve("main")(3) == ("main", 3)
    assert _import_count(log) == 2


def test_a_restored_registry_is_a_working_independent_registry() -> None:
    registry = ce.Registry()
    registry.register("add", handlers.add)

    restored = pickle.loads(pickle.dumps(registry))
    restored.register("square", handlers.square)

    assert "square" in restored
    assert "square" not in registry
    with pytest.raises(ce.DuplicateCommand):
        restored.register("add", handlers.add)


def test_a_registry_with_a_lambda_does_not_pickle() -> None:
    registry = ce.Registry()
    registry.register("anon", lambda: None)

    with pytest.raises((pickle.PicklingError, AttributeError)):
        pickle.dumps(registry)
