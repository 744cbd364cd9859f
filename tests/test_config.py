"""from_config: sources, precedence, every key, kinds and plugins, and validation errors."""

from __future__ import annotations

import importlib
import json
import logging
import os
import re
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import commandexec as ce
from commandexec.config import ENVIRONMENT, from_config, load_config, resolve_kind
from commandexec.executors.routed import RoutedExecutor
from tests import handlers

CREATED: list[ce.Executor] = []


def tracking_threads(**options: Any) -> ce.Executor:
    """An executor factory that remembers what it made (a "package.module:Factory" kind)."""
    executor = ce.ThreadExecutor(**options)
    CREATED.append(executor)
    return executor


def no_gpu(*, registry: Any = None, events: Any = None, device: int = 0) -> ce.Executor:
    raise RuntimeError(f"no GPU {device} here")


def not_an_executor(*, registry: Any = None, events: Any = None) -> object:
    return object()


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No COMMANDEXEC_* variable from outside; the commandexec logger's level restored."""
    for name in list(os.environ):
        if name.startswith("COMMANDEXEC_"):
            monkeypatch.delenv(name)
    logger = logging.getLogger("commandexec")
    level = logger.level
    CREATED.clear()
    yield
    logger.setLevel(level)


@pytest.fixture
def module(tmp_path: Path) -> Iterator[Callable[[str, str], str]]:
    """Write an importable module into a temp dir on sys.path; all undone afterwards."""
    root = tmp_path / "modules"
    root.mkdir()
    sys.path.insert(0, str(root))
    written: list[str] = []

    def write(name: str, source: str) -> str:
        (root / f"{name}.py").write_text(textwrap.dedent(source))
        importlib.invalidate_caches()
        written.append(name)
        return name

    yield write
    sys.path.remove(str(root))
    for name in written:
        sys.modules.pop(name, None)
    importlib.invalidate_caches()


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


# -- sources -----------------------------------------------------------------------


def test_a_dict_configures_the_executor_kind_and_options(registry: ce.Registry) -> None:
    with from_config({"executor": "threads", "max_workers": 3}, registry=registry, environ={}) as executor:
        assert isinstance(executor, ce.ThreadExecutor)
        assert executor.max_workers == 3
        assert executor.submit(ce.Command("add", 1, 2)).result(timeout=10) == 3


def test_a_toml_file_configures_the_executor(tmp_path: Path, registry: ce.Registry) -> None:
    path = write(tmp_path / "app.toml", 'executor = "inline"\nstrict = "json"\n')
    with from_config(path, registry=registry, environ={}) as executor:
        assert isinstance(executor, ce.InlineExecutor)
        assert executor.strict == "json"


def test_a_json_file_configures_the_executor(tmp_path: Path, registry: ce.Registry) -> None:
    path = tmp_path / "app.json"
    path.write_text(json.dumps({"executor": "threads", "max_workers": 2, "thread_name_prefix": "json"}))
    with from_config(str(path), registry=registry, environ={}) as executor:
        assert executor.submit(ce.Command("thread_name")).result(timeout=10) == "json_0"


def test_pyproject_toml_is_read_from_its_tool_commandexec_table(tmp_path: Path, registry: ce.Registry) -> None:
    path = write(tmp_path / "pyproject.toml", '[project]\nname = "x"\n[tool.commandexec]\nexecutor = "inline"\n')
    with from_config(path, registry=registry, environ={}) as executor:
        assert isinstance(executor, ce.InlineExecutor)
    assert load_config(path, environ={}).origin == f"[tool.commandexec] in {path}"


def test_a_pyproject_toml_without_the_table_is_an_error_when_named(tmp_path: Path) -> None:
    path = write(tmp_path / "pyproject.toml", '[project]\nname = "x"\n')
    with pytest.raises(ce.ConfigError, match=r"has no \[tool.commandexec\] table"):
        load_config(path, environ={})


def test_without_a_source_commandexec_config_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "elsewhere.toml", 'executor = "inline"\n')
    monkeypatch.setenv("COMMANDEXEC_CONFIG", str(path))
    with from_config() as executor:
        assert isinstance(executor, ce.InlineExecutor)


def test_without_a_source_commandexec_toml_in_the_working_directory_is_read_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "commandexec.toml", 'executor = "inline"\n')
    write(tmp_path / "pyproject.toml", '[tool.commandexec]\nexecutor = "processes"\n')
    monkeypatch.chdir(tmp_path)
    with from_config() as executor:
        assert isinstance(executor, ce.InlineExecutor)


def test_without_a_source_pyproject_toml_is_read_next(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "pyproject.toml", '[tool.commandexec]\nexecutor = "inline"\n')
    monkeypatch.chdir(tmp_path)
    with from_config() as executor:
        assert isinstance(executor, ce.InlineExecutor)


def test_without_any_configuration_the_defaults_make_a_thread_pool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "pyproject.toml", '[project]\nname = "no-commandexec-table"\n')
    monkeypatch.chdir(tmp_path)
    config = load_config()
    assert config.origin == "the built-in defaults"
    with config.build() as executor:
        assert type(executor) is ce.ThreadExecutor


# -- precedence ----------------------------------------------------------------------


def test_environment_variables_override_the_file_which_overrides_the_defaults(
    tmp_path: Path, registry: ce.Registry
) -> None:
    path = write(tmp_path / "app.toml", 'executor = "inline"\nmax_workers = 2\nthread_name_prefix = "file"\n')
    environ = {"COMMANDEXEC_EXECUTOR": "threads", "COMMANDEXEC_MAX_WORKERS": "3"}
    config = load_config(path, environ=environ)
    assert config.sources == {
        "executor": "environment variable COMMANDEXEC_EXECUTOR",
        "max_workers": "environment variable COMMANDEXEC_MAX_WORKERS",
        "thread_name_prefix": str(path),
    }
    with config.build(registry=registry) as executor:
        assert isinstance(executor, ce.ThreadExecutor)
        assert executor.max_workers == 3
        assert executor.submit(ce.Command("thread_name")).result(timeout=10) == "file_0"


def test_environment_variables_override_a_dict_too(registry: ce.Registry) -> None:
    with from_config({"executor": "threads"}, registry=registry, environ={"COMMANDEXEC_EXECUTOR": "inline"}) as ex:
        assert isinstance(ex, ce.InlineExecutor)


def test_os_environ_is_read_by_default(monkeypatch: pytest.MonkeyPatch, registry: ce.Registry) -> None:
    monkeypatch.setenv("COMMANDEXEC_EXECUTOR", "inline")
    with from_config({"executor": "threads"}, registry=registry) as executor:
        assert isinstance(executor, ce.InlineExecutor)


def test_an_empty_environ_ignores_the_environment(monkeypatch: pytest.MonkeyPatch, registry: ce.Registry) -> None:
    monkeypatch.setenv("COMMANDEXEC_EXECUTOR", "inline")
    monkeypatch.setenv("COMMANDEXEC_CONFIG", "/nonexistent.toml")
    with from_config({"executor": "threads"}, registry=registry, environ={}) as executor:
        assert isinstance(executor, ce.ThreadExecutor)


def test_commandexec_config_replaces_the_source_the_code_passes(tmp_path: Path, registry: ce.Registry) -> None:
    path = write(tmp_path / "operator.toml", 'executor = "inline"\n')
    environ = {"COMMANDEXEC_CONFIG": str(path)}
    for source in ({"executor": "threads"}, write(tmp_path / "code.toml", 'executor = "threads"\n')):
        config = load_config(source, environ=environ)
        assert config.origin == f"{path} (COMMANDEXEC_CONFIG)"
        assert config.executors["default"].kind == "inline"


def test_an_empty_environment_variable_counts_as_unset(registry: ce.Registry) -> None:
    config = load_config({"max_workers": 2}, environ={"COMMANDEXEC_MAX_WORKERS": "", "COMMANDEXEC_CONFIG": ""})
    assert config.executors["default"].options == {"max_workers": 2}


def test_explicit_registry_and_events_arguments_beat_the_configuration(
    module: Callable[[str, str], str], registry: ce.Registry
) -> None:
    module("cfg_reg_a", "import commandexec as ce\nregistry = ce.Registry()\n")
    bus = ce.EventBus(cascade_limit=3)
    config = {"registry": "cfg_reg_a:registry", "cascade_limit": 9, "executor": "inline"}
    with from_config(config, registry=registry, events=bus, environ={}) as executor:
        assert executor.registry is registry
        assert executor.events is bus
        assert bus.cascade_limit == 3


def test_environment_options_go_to_the_named_default_executor(registry: ce.Registry) -> None:
    config = {"default_executor": "io", "executors": {"io": {"kind": "inline"}, "cpu": {"kind": "processes"}}}
    loaded = load_config(config, environ={"COMMANDEXEC_EXECUTOR": "threads", "COMMANDEXEC_MAX_WORKERS": "2"})
    assert loaded.executors["io"].kind == "threads"
    assert loaded.executors["io"].options == {"max_workers": 2}
    assert loaded.sources["executors.io.kind"] == "environment variable COMMANDEXEC_EXECUTOR"
    assert loaded.used_executors() == ["io"]  # cpu is defined, validated, but nothing routes to it


def test_commandexec_default_executor_switches_the_default_route() -> None:
    config = {"executors": {"io": {"kind": "inline"}}}
    assert load_config(config, environ={"COMMANDEXEC_DEFAULT_EXECUTOR": "io"}).default_executor == "io"


@pytest.mark.parametrize(
    ("kind", "name", "text", "key", "value"),
    [
        ("threads", "COMMANDEXEC_MAX_WORKERS", " 4 ", "max_workers", 4),
        ("processes", "COMMANDEXEC_START_METHOD", "spawn", "start_method", "spawn"),
        ("processes", "COMMANDEXEC_MAX_TASKS_PER_CHILD", "10", "max_tasks_per_child", 10),
        ("threads", "COMMANDEXEC_MAX_PENDING", "5", "max_pending", 5),
        ("threads", "COMMANDEXEC_ON_FULL", "raise", "on_full", "raise"),
        ("inline", "COMMANDEXEC_STRICT", "yes", "strict", True),
        ("inline", "COMMANDEXEC_STRICT", "JSON", "strict", "json"),
        ("threads", "COMMANDEXEC_THREAD_NAME_PREFIX", "w", "thread_name_prefix", "w"),
        ("processes", "COMMANDEXEC_INITIALIZER", "tests.handlers:noop", "initializer", "tests.handlers:noop"),
    ],
)
def test_environment_variables_are_converted_to_the_options_type(
    kind: str, name: str, text: str, key: str, value: Any
) -> None:
    config = load_config({"executor": kind}, environ={name: text})
    assert config.executors["default"].options[key] == value
    assert config.sources[key] == f"environment variable {name}"


def test_global_environment_variables_are_converted_too() -> None:
    environ = {
        "COMMANDEXEC_IMPORTS": "json, textwrap",
        "COMMANDEXEC_REGISTRY": "tests.handlers:REGISTRY",
        "COMMANDEXEC_CASCADE_LIMIT": "4",
        "COMMANDEXEC_LOG_LEVEL": "debug",
        "COMMANDEXEC_TIMEOUT": "2.5",
        "COMMANDEXEC_RETRIES": "1",
    }
    config = load_config({}, environ=environ)
    assert config.imports == ("json", "textwrap")
    assert config.registry == "tests.handlers:REGISTRY"
    assert config.cascade_limit == 4
    assert config.log_level == logging.DEBUG
    assert config.command_defaults == ce.Command("x").with_options(timeout=2.5, retries=1).options


def test_every_documented_environment_variable_is_in_the_reference() -> None:
    reference = (Path(__file__).parent.parent / "docs" / "configuration.md").read_text()
    for name in [*ENVIRONMENT, "COMMANDEXEC_CONFIG"]:
        assert f"`{name}`" in reference, name


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"COMMANDEXEC_MAX_WORKERS": "four"}, "COMMANDEXEC_MAX_WORKERS='four' is not an integer"),
        ({"COMMANDEXEC_TIMEOUT": "soon"}, "COMMANDEXEC_TIMEOUT='soon' is not a number"),
        ({"COMMANDEXEC_MAX_WORKERS": "0"}, "environment variable COMMANDEXEC_MAX_WORKERS: max_workers must be"),
        ({"COMMANDEXEC_ON_FULL": "wait"}, "COMMANDEXEC_ON_FULL: on_full must be one of 'block', 'raise'"),
        ({"COMMANDEXEC_MAX_WORKRS": "4"}, "unknown environment variable COMMANDEXEC_MAX_WORKRS; did you mean "),
        ({"COMMANDEXEC_EXECUTER": "inline"}, "did you mean COMMANDEXEC_EXECUTOR?"),
        ({"COMMANDEXEC_CONFIG": "/no/such/file.toml"}, "cannot read configuration file /no/such/file.toml"),
    ],
)
def test_a_bad_environment_variable_is_a_config_error_naming_it(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ce.ConfigError) as caught:
        load_config({}, environ=environ)
    assert message in str(caught.value)


def test_unrelated_commandexec_variables_are_left_alone() -> None:
    assert load_config({}, environ={"COMMANDEXEC_CHAOS_SEED": "7"}).executors["default"].kind == "threads"


# -- what it covers ----------------------------------------------------------------------


def test_process_options_start_method_workers_and_tasks_per_child(registry: ce.Registry) -> None:
    config = {"executor": "processes", "max_workers": 1, "start_method": "spawn", "max_tasks_per_child": 1}
    with from_config(config, registry=registry, environ={}) as executor:
        assert isinstance(executor, ce.ProcessExecutor)
        assert (executor.start_method, executor.max_workers) == ("spawn", 1)
        first = executor.submit(ce.Command("pid")).result(timeout=30)
        second = executor.submit(ce.Command("pid")).result(timeout=30)
        assert first != second  # each worker ran one command and was replaced


def test_thread_options_bound_pending_commands(registry: ce.Registry) -> None:
    config = {"max_workers": 1, "max_pending": 1, "on_full": "raise"}
    with from_config(config, registry=registry, environ={}) as executor:
        name = f"config-{id(executor)}"
        running = executor.submit(ce.Command("wait_event", name))
        queued = executor.submit(ce.Command("add", 1))
        try:
            with pytest.raises(ce.ExecutorFull):
                for _ in range(3):  # the worker may not have taken the first one yet
                    executor.submit(ce.Command("add", 2))
        finally:
            handlers.gate(name).set()
        assert running.result(timeout=10) is True
        assert queued.result(timeout=10) == 1


def test_an_initializer_reference_runs_in_each_worker(registry: ce.Registry) -> None:
    name = f"config-init-{os.getpid()}"
    config = {"max_workers": 1, "initializer": "tests.handlers:gate", "initargs": [name]}
    with from_config(config, registry=registry, environ={}) as executor:
        executor.submit(ce.Command("noop")).result(timeout=10)
    assert name in handlers._gates


def test_imports_are_imported_and_register_into_the_default_registry(module: Callable[[str, str], str]) -> None:
    name = module("cfg_imports_b", "import commandexec as ce\nce.registry.register('cfg.hello', lambda: 'hi')\n")
    try:
        with from_config({"executor": "inline", "imports": [name]}, environ={}) as executor:
            assert executor.registry is ce.registry
            assert executor.submit(ce.Command("cfg.hello")).result(timeout=10) == "hi"
    finally:
        ce.registry.unregister("cfg.hello")


def test_a_registry_reference_is_used_and_workers_import_it_themselves(module: Callable[[str, str], str]) -> None:
    # A lambda cannot be pickled to a worker: the worker must import the registry by its reference.
    module(
        "cfg_reg_c", "import commandexec as ce\nregistry = ce.Registry()\nregistry.register('twice', lambda x: 2 * x)\n"
    )
    module("cfg_extra_c", "from cfg_reg_c import registry\nregistry.register('thrice', lambda x: 3 * x)\n")
    config = {"registry": "cfg_reg_c:registry", "imports": ["cfg_extra_c"], "executor": "processes", "max_workers": 1}
    with from_config(config, environ={}) as executor:
        assert executor.registry is sys.modules["cfg_reg_c"].registry
        assert executor.submit(ce.Command("twice", 21)).result(timeout=30) == 42
        assert executor.submit(ce.Command("thrice", 2)).result(timeout=30) == 6


def test_observers_are_subscribed_and_their_follow_ups_run(module: Callable[[str, str], str]) -> None:
    module(
        "cfg_obs_d",
        """
        import commandexec as ce
        seen = []
        def record(event):
            seen.append(event.name)
        def answer(event):
            return ce.Command("add", event.payload["index"], 100)
        """,
    )
    observers = {"step.*": ["cfg_obs_d:record", "cfg_obs_d:answer"], "command.succeeded": "cfg_obs_d:record"}
    config = {"executor": "inline", "observers": observers}
    with from_config(config, registry=handlers.make_registry(), environ={}) as executor:
        executor.submit(ce.Command("emit_steps", 2)).result(timeout=10)
        executor.drain(timeout=10)
    seen = sys.modules["cfg_obs_d"].seen
    assert seen.count("step.progress") == 2
    assert seen.count("command.succeeded") == 3  # the command and its two follow-ups


def test_cascade_limit_and_log_level_are_applied(registry: ce.Registry) -> None:
    with from_config({"cascade_limit": 2, "log_level": "error"}, registry=registry, environ={}) as executor:
        assert executor.events.cascade_limit == 2
        assert logging.getLogger("commandexec").level == logging.ERROR
    config = {"executors": {"x": {"kind": "inline"}}, "routes": {"a": "x"}, "cascade_limit": 5}
    with from_config(config, registry=registry, environ={}) as routed:
        assert routed.events.cascade_limit == 5


def test_command_defaults_apply_to_commands_that_set_none(tmp_path: Path, registry: ce.Registry) -> None:
    config = {
        "executor": "inline",
        "command_defaults": {"retries": 2, "retry_backoff": 0.01, "retry_on": ["ValueError"]},
    }
    with from_config(config, registry=registry, environ={}) as executor:
        assert isinstance(executor, RoutedExecutor)
        assert executor.submit(ce.Command("flaky", str(tmp_path / "a"), 2)).result(timeout=10) == "ok"
        with pytest.raises(ValueError):
            executor.submit(ce.Command("flaky", str(tmp_path / "b"), 1).with_options(timeout=5)).result(timeout=10)


def test_options_a_kind_does_not_take_are_ignored_and_logged(
    registry: ce.Registry, caplog: pytest.LogCaptureFixture
) -> None:
    # One file serves every kind: COMMANDEXEC_EXECUTOR=inline must not break on max_workers.
    caplog.set_level(logging.INFO, logger="commandexec")
    config = load_config({"max_workers": 4, "max_pending": 3}, environ={"COMMANDEXEC_EXECUTOR": "inline"})
    assert config.executors["default"].ignored == ("max_workers", "max_pending")
    with config.build(registry=registry) as executor:
        assert isinstance(executor, ce.InlineExecutor)
    assert "max_workers ignored: 'inline' executors do not take it" in caplog.text


@pytest.mark.parametrize("kind", ["asyncio", "remote"])
def test_kinds_not_built_yet_say_so(kind: str) -> None:
    with pytest.raises(ce.ConfigError, match=f"executor is '{kind}', a kind not available yet in this version"):
        load_config({"executor": kind}, environ={})


# -- kinds: by name, by "package.module:Factory", by entry point ----------------------------


def test_a_factory_reference_is_a_kind(registry: ce.Registry) -> None:
    config = {"executor": "tests.test_config:tracking_threads", "max_workers": 2}
    with from_config(config, registry=registry, environ={}) as executor:
        assert [executor] == CREATED
        assert executor.max_workers == 2


def test_a_factorys_own_keyword_options_are_accepted_and_others_rejected() -> None:
    assert load_config({"executor": "tests.test_config:no_gpu", "device": 1}, environ={}).executors["default"].options
    with pytest.raises(ce.ConfigError, match="devise is not a known key; did you mean 'device'"):
        load_config({"executor": "tests.test_config:no_gpu", "devise": 1}, environ={})


def test_a_factory_that_does_not_make_an_executor_is_an_error() -> None:
    with pytest.raises(ce.ConfigError, match="which is not a commandexec Executor"):
        from_config({"executor": "tests.test_config:not_an_executor"}, environ={})


@pytest.fixture
def plugin(tmp_path: Path) -> Iterator[str]:
    """A fake installed distribution declaring the executor kind "fake" as an entry point."""
    root = tmp_path / "site"
    info = root / "fakeplugin-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fakeplugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[commandexec.executors]\nfake = fakeplugin_executor:Factory\nbroken = fakeplugin_missing:Factory\n"
    )
    write(
        root / "fakeplugin_executor.py",
        """
        import commandexec as ce

        class Factory(ce.InlineExecutor):
            kind = "fake"

            def __init__(self, *, registry=None, events=None, greeting="hello"):
                super().__init__(registry=registry, events=events)
                self.greeting = greeting
        """,
    )
    sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    yield "fake"
    sys.path.remove(str(root))
    sys.modules.pop("fakeplugin_executor", None)
    importlib.invalidate_caches()


def test_an_entry_point_names_a_kind(plugin: str, registry: ce.Registry) -> None:
    with from_config({"executor": plugin, "greeting": "hi"}, registry=registry, environ={}) as executor:
        assert type(executor).__name__ == "Factory"
        assert executor.greeting == "hi"  # type: ignore[attr-defined]
        assert executor.submit(ce.Command("add", 2, 2)).result(timeout=10) == 4
    assert resolve_kind(plugin).__name__ == "Factory"


def test_an_entry_point_that_fails_to_load_is_a_config_error(plugin: str) -> None:
    with pytest.raises(ce.ConfigError, match="whose entry point 'fakeplugin_missing:Factory' failed to load"):
        load_config({"executor": "broken"}, environ={})


def test_an_unknown_kind_lists_plugin_kinds_and_suggests_one(plugin: str) -> None:
    with pytest.raises(ce.ConfigError, match=r"available: inline, threads, processes, broken, fake\); did you mean"):
        load_config({"executors": {"x": {"kind": "fak"}}}, environ={})


def test_resolve_kind_returns_the_built_in_classes() -> None:
    assert resolve_kind("threads") is ce.ThreadExecutor
    with pytest.raises(ce.ConfigError, match="did you mean 'processes'"):
        resolve_kind("process")


# -- validation: named source, key path, suggestion; nothing half-built -------------------------


def test_a_typo_in_a_file_names_the_file_the_key_path_and_the_intended_key(tmp_path: Path) -> None:
    path = write(
        tmp_path / "app.toml",
        """
        [executors.cpu]
        kind = "processes"
        max_workrs = 4
        """,
    )
    with pytest.raises(ce.ConfigError) as caught:
        load_config(path, environ={})
    assert str(caught.value) == f"{path}: executors.cpu.max_workrs is not a known key; did you mean 'max_workers'?"
    assert caught.value.source == str(path)  # type: ignore[attr-defined]
    assert caught.value.key == "executors.cpu.max_workrs"  # type: ignore[attr-defined]
    assert caught.value.suggestion == "max_workers"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"executor": "thread"}, "executor is 'thread', not a known executor kind (available: inline, threads"),
        ({"executor": "thread"}, "did you mean 'threads'?"),
        ({"max_workers": "4"}, "max_workers must be an integer >= 1, got '4'"),
        ({"max_workers": True}, "max_workers must be an integer >= 1, got True"),
        ({"start_method": "forkserve"}, "start_method must be one of"),
        ({"kind": "threads"}, "kind is not a known key; did you mean 'executor'?"),
        ({"timeout": 5}, "timeout is not a known key; did you mean 'command_defaults.timeout'?"),
        ({"mp_context": "spawn", "executor": "processes"}, "did you mean 'start_method'?"),
        (
            {"executors": {"cpu": {"executor": "processes"}}},
            "executors.cpu.executor is not a known key; did you mean 'kind'",
        ),
        ({"executors": {"default": {}}}, "executors.default is reserved"),
        ({"executors": []}, "executors must be a table"),
        (
            {"routes": [{"pattern": "a", "executor": "cpu"}]},
            "routes[0].executor names 'cpu', not defined in [executors]",
        ),
        ({"executors": {"cpu": {}}, "routes": {"a": "cpv"}}, "did you mean 'cpu'?"),
        (
            {"routes": [{"pattern": "a", "executer": "default"}]},
            "routes[0].executer is not a known key; did you mean 'executor'",
        ),
        ({"routes": [{"pattern": "a"}]}, "routes[0] needs both a 'pattern' and an 'executor'"),
        ({"routes": [{"pattern": "", "executor": "default"}]}, "routes[0].pattern must be a non-empty string"),
        ({"routes": "cpu"}, "routes must be a list of tables or a table"),
        ({"default_executor": "io"}, "default_executor names 'io', not defined in [executors]"),
        ({"default_executor": "io", "executors": {"io": {}}, "max_workers": 2}, "move it to [executors.io]"),
        ({"default_executor": "io", "executors": {"io": {}}, "max_wrkers": 2}, "max_wrkers is not a known key"),
        ({"imports": "json"}, "imports must be a list of module names"),
        ({"imports": ["not a module"]}, "imports must be a list of module names"),
        ({"registry": "pkg.mod.registry"}, "registry must be an import reference 'package.module:name'"),
        ({"observers": {"a.*": "nomodule"}}, 'observers."a.*" must be an import reference'),
        ({"observers": ["x"]}, "observers must be a table"),
        ({"cascade_limit": -1}, "cascade_limit must be an integer >= 0"),
        ({"log_level": "INFOO"}, "did you mean 'INFO'?"),
        ({"command_defaults": {"timout": 1}}, "command_defaults.timout is not a known key; did you mean 'timeout'?"),
        ({"command_defaults": {"retries": -1}}, "command_defaults.retries must be an int >= 0, got -1"),
        (
            {"executor": "processes", "start_method": "fork", "max_tasks_per_child": 2},
            "cannot be used with start_method",
        ),
        ({"executor": "tests.test_config:missing"}, "executor is 'tests.test_config:missing', a factory that cannot"),
    ],
)
def test_a_bad_configuration_is_a_config_error_that_says_where_and_what(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ce.ConfigError) as caught:
        load_config(config, environ={})
    assert message in str(caught.value)
    assert str(caught.value).startswith("the configuration dict: ")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"imports": ["cfg_no_such_module"]}, "imports[0] names module 'cfg_no_such_module', which cannot be imported"),
        (
            {"registry": "tests.handlers:add"},
            "registry names 'tests.handlers:add', which is a function, not a Registry",
        ),
        (
            {"observers": {"a": "tests.handlers:nope"}},
            "observers.a names 'tests.handlers:nope', which cannot be imported",
        ),
        ({"observers": {"a": "tests.handlers:REGISTRY"}}, "which is not callable"),
        ({"initializer": "tests.handlers:nope"}, "initializer names 'tests.handlers:nope'"),
    ],
)
def test_a_missing_module_or_bad_reference_fails_before_any_executor_starts(
    config: dict[str, Any], message: str
) -> None:
    with pytest.raises(ce.ConfigError) as caught:
        from_config({"executor": "tests.test_config:tracking_threads", **config}, environ={})
    assert message in str(caught.value)
    assert CREATED == []


def test_if_a_later_executor_cannot_start_the_ones_started_are_shut_down() -> None:
    config = {
        "executor": "tests.test_config:tracking_threads",
        "executors": {"gpu": {"kind": "tests.test_config:no_gpu", "device": 3}},
        "routes": {"gpu.*": "gpu"},
    }
    message = "executors.gpu could not be created as a 'tests.test_config:no_gpu' executor: no GPU 3 here"
    with pytest.raises(ce.ConfigError, match=re.escape(message)):
        from_config(config, environ={})
    (started,) = CREATED
    with pytest.raises(RuntimeError, match="after shutdown"):
        started.submit(ce.Command("add", 1))


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.toml", "executor = \n", "bad.toml: not valid TOML"),
        ("bad.json", "{", "bad.json: not valid JSON"),
        ("list.json", "[1]", "list.json: a configuration must be a table"),
        ("app.yaml", "executor: threads", "unsupported file type '.yaml'"),
    ],
)
def test_an_unreadable_file_is_a_config_error_naming_it(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = write(tmp_path / name, text)
    with pytest.raises(ce.ConfigError) as caught:
        load_config(path, environ={})
    assert message in str(caught.value)


def test_a_value_from_the_environment_is_blamed_on_its_variable() -> None:
    with pytest.raises(ce.ConfigError) as caught:
        load_config({"executor": "threads"}, environ={"COMMANDEXEC_EXECUTOR": "thread"})
    assert str(caught.value).startswith("environment variable COMMANDEXEC_EXECUTOR: executor is 'thread'")


def test_a_named_executors_kind_must_be_a_string() -> None:
    with pytest.raises(ce.ConfigError, match=r"executors\.cpu\.kind must be a non-empty string, got 3"):
        load_config({"executors": {"cpu": {"kind": 3}}}, environ={})


def test_an_empty_observer_pattern_is_refused_before_anything_starts() -> None:
    with pytest.raises(ce.ConfigError, match=r'observers\."" is not an event pattern'):
        load_config({"observers": {"": "tests.handlers:noop"}}, environ={})


def test_imports_reach_worker_processes_with_the_default_registry(module: Callable[[str, str], str]) -> None:
    module(
        "cfg_imports_e",
        """
        import os
        import commandexec as ce

        def worker_pid():
            return os.getpid()

        ce.registry.register("cfg.worker_pid", worker_pid)
        """,
    )
    try:
        config = {"executor": "processes", "max_workers": 1, "imports": ["cfg_imports_e"]}
        with from_config(config, environ={}) as executor:
            assert executor.submit(ce.Command("cfg.worker_pid")).result(timeout=30) != os.getpid()
    finally:
        ce.registry.unregister("cfg.worker_pid")
