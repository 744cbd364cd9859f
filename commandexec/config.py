"""Configuration: a ready executor from a dict, a TOML or JSON file and the environment.

:func:`from_config` reads one configuration (keys in ``docs/configuration.md``),
validates all of it, imports what it names, and only then starts executors:
one, or several behind a :class:`~commandexec.executors.routed.RoutedExecutor`
that sends each command to the executor its key is routed to.

Precedence, lowest first: built-in defaults; the *source* (a dict, a ``.toml``
or ``.json`` file, ``[tool.commandexec]`` of a ``pyproject.toml``); the
environment (``COMMANDEXEC_CONFIG`` replaces the source, and each
``COMMANDEXEC_<OPTION>`` replaces one value). The environment wins so that an
operator can move any program without touching its code; pass ``environ={}``
to ignore it. Objects passed as arguments (``registry=``, ``events=``) are
used as they are, over any setting that would make them.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import importlib
import importlib.metadata
import inspect
import json
import logging
import multiprocessing
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .command import Options
from .errors import CommandExecError, ConfigError
from .events import DEFAULT_CASCADE_LIMIT, EventBus
from .executors import KINDS, executor_class
from .executors.base import Executor
from .executors.routed import RoutedExecutor
from .registry import Registry, resolve_reference

__all__ = ["ENTRY_POINT_GROUP", "ENVIRONMENT", "Config", "ExecutorConfig", "from_config", "load_config", "resolve_kind"]

logger = logging.getLogger("commandexec")

ENTRY_POINT_GROUP = "commandexec.executors"
"""The entry-point group third-party executor kinds register under."""
DEFAULT_KIND = "threads"
_PLANNED = ("asyncio", "remote")  # kinds the design promises that this version lacks


class _Bad(Exception):
    """A value's problem, raised before the caller knows where the value came from."""

    def __init__(self, problem: str, suggestion: str | None = None) -> None:
        super().__init__(problem)
        self.suggestion = suggestion


Check = Callable[[Any], Any]


def _is(test: Callable[[Any], Any], wanted: str) -> Check:
    """A check that passes values for which *test* is true: each must be *wanted*."""

    def check(value: Any) -> Any:
        if not test(value):
            raise _Bad(f"must be {wanted}, got {value!r}")
        return value

    return check


def _choice(*choices: str) -> Check:
    def check(value: Any) -> str:
        if type(value) is not str or value not in choices:
            close = difflib.get_close_matches(str(value), choices, n=1)
            raise _Bad(f"must be one of {', '.join(map(repr, choices))}, got {value!r}", close[0] if close else None)
        return value

    return check


def _dotted(name: Any) -> bool:
    return type(name) is str and all(part.isidentifier() for part in name.split("."))


def _log_level(value: Any) -> int:
    names = logging.getLevelNamesMapping()
    if type(value) is int and value >= 0:
        return value
    if type(value) is str and value.upper() in names:
        return names[value.upper()]
    close = difflib.get_close_matches(str(value).upper(), names, n=1)
    raise _Bad(f"must be a logging level name such as 'INFO' or a number, got {value!r}", close[0] if close else None)


_text = _is(lambda v: type(v) is str and v, "a non-empty string")
_reference = _is(
    lambda v: type(v) is str and _dotted(v.partition(":")[0]) and _dotted(v.partition(":")[2]),
    "an import reference 'package.module:name'",
)
_modules = _is(lambda v: isinstance(v, list) and all(_dotted(m) for m in v), "a list of module names ('pkg.mod')")

EXECUTOR_KEYS: dict[str, Check] = {
    "kind": _text,
    "max_workers": _is(lambda v: type(v) is int and v >= 1, "an integer >= 1"),
    "start_method": _choice(*multiprocessing.get_all_start_methods()),
    "max_tasks_per_child": _is(lambda v: type(v) is int and v >= 1, "an integer >= 1"),
    "max_pending": _is(lambda v: type(v) is int and v >= 1, "an integer >= 1"),
    "on_full": _choice("block", "raise"),
    "thread_name_prefix": _is(lambda v: type(v) is str, "a string"),
    "strict": _is(lambda v: type(v) is bool or v in ("pickle", "json"), "true, false, 'pickle' or 'json'"),
    "initializer": _reference,
    "initargs": _is(lambda v: isinstance(v, list), "a list"),
}
"""Options of an executor section: the built-in kinds' constructor arguments."""
_PARAMETER = {"start_method": "mp_context"}  # configuration key -> constructor parameter, where they differ
_GLOBAL_KEYS: dict[str, Check] = {
    "default_executor": _text,
    "imports": _modules,
    "registry": _reference,
    "cascade_limit": _is(lambda v: type(v) is int and v >= 0, "an integer >= 0"),
    "log_level": _log_level,
}
_TABLES = ("executors", "routes", "observers", "command_defaults")
_TOP_KEYS = ("executor", *(k for k in EXECUTOR_KEYS if k != "kind"), *_GLOBAL_KEYS, *_TABLES)
_OPTION_NAMES = tuple(field.name for field in dataclasses.fields(Options))
_HINTS = {
    "mp_context": "start_method",
    "workers": "max_workers",
    "timeout": "command_defaults.timeout",
    "retries": "command_defaults.retries",
    "default": "default_executor",
}


def _words(text: str) -> list[str]:
    return [word.strip() for word in text.split(",") if word.strip()]


def _flag(text: str) -> bool | str:
    lowered = text.strip().lower()
    return {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}.get(lowered, lowered)


ENVIRONMENT: dict[str, tuple[str, Callable[[str], Any]]] = {
    "COMMANDEXEC_DEFAULT_EXECUTOR": ("default_executor", str.strip),  # first: the others may target it
    "COMMANDEXEC_EXECUTOR": ("kind", str.strip),
    "COMMANDEXEC_MAX_WORKERS": ("max_workers", int),
    "COMMANDEXEC_START_METHOD": ("start_method", str.strip),
    "COMMANDEXEC_MAX_TASKS_PER_CHILD": ("max_tasks_per_child", int),
    "COMMANDEXEC_MAX_PENDING": ("max_pending", int),
    "COMMANDEXEC_ON_FULL": ("on_full", str.strip),
    "COMMANDEXEC_THREAD_NAME_PREFIX": ("thread_name_prefix", str),
    "COMMANDEXEC_STRICT": ("strict", _flag),
    "COMMANDEXEC_INITIALIZER": ("initializer", str.strip),
    "COMMANDEXEC_IMPORTS": ("imports", _words),
    "COMMANDEXEC_REGISTRY": ("registry", str.strip),
    "COMMANDEXEC_CASCADE_LIMIT": ("cascade_limit", int),
    "COMMANDEXEC_LOG_LEVEL": ("log_level", str.strip),
    "COMMANDEXEC_TIMEOUT": ("command_defaults.timeout", float),
    "COMMANDEXEC_RETRIES": ("command_defaults.retries", int),
}
"""Environment variable -> (the key it sets, how its text converts). Executor
options go to the default executor; an empty variable counts as unset."""


class _Reader:
    """Validates values and fails with the origin and key path of the bad one."""

    def __init__(self, origin: str, sources: dict[str, str]) -> None:
        self.origin = origin
        self.sources = sources  # key path -> origin, for values that came from elsewhere (env)

    def where(self, path: str) -> str:
        return self.sources.get(path, self.origin)

    def fail(self, path: str, problem: str, suggestion: str | None = None) -> ConfigError:
        hint = f"; did you mean {suggestion!r}?" if suggestion else ""
        error = ConfigError(f"{self.where(path)}: {path} {problem}{hint}")
        error.source, error.key, error.suggestion = self.where(path), path, suggestion  # type: ignore[attr-defined]
        return error

    def check(self, path: str, value: Any, check: Check) -> Any:
        try:
            value = check(value)
        except _Bad as bad:
            raise self.fail(path, str(bad), bad.suggestion) from None
        self.sources.setdefault(path, self.origin)
        return value

    def table(self, path: str, value: Any) -> Mapping[str, Any]:
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise self.fail(path, f"must be a table (mapping with string keys), got {value!r}")
        return value

    def unknown(self, path: str, key: str, known: Any, hint: str | None = None) -> ConfigError:
        close = hint or _HINTS.get(key) or next(iter(difflib.get_close_matches(key, list(known), n=1)), None)
        return self.fail(_join(path, key), "is not a known key", close)


def _quote(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{_quote(key)}" if prefix else _quote(key)


@dataclasses.dataclass(frozen=True)
class ExecutorConfig:
    """One validated executor section.

    Attributes:
        name: ``"default"`` for the top-level executor, else its ``[executors.NAME]``.
        kind: The kind as written (a name, or ``"package.module:Factory"``).
        factory: What is called to create it.
        options: Configuration key -> value, for the options its kind takes.
        ignored: Options given that this kind does not take (one file serves every kind).
        path: Its key path (``""`` for the top level, else ``executors.NAME``).
    """

    name: str
    kind: str
    factory: Callable[..., Any]
    options: Mapping[str, Any]
    ignored: tuple[str, ...] = ()
    path: str = ""


@dataclasses.dataclass(frozen=True)
class Config:
    """A validated configuration; :meth:`build` makes the executor it describes.

    Attributes:
        origin: Where it was read from (a file, ``[tool.commandexec]``, a dict, or defaults).
        executors: Every executor section by name, used or not.
        default_executor: The name of the executor for commands no route matches.
        routes: ``(pattern, executor name)`` pairs, in the order they are tried.
        imports: Modules imported before anything starts.
        registry: Import reference of the registry to use, if any.
        observers: ``(event pattern, "package.module:function")`` subscriptions.
        cascade_limit: The event bus's follow-up depth limit, if set.
        log_level: The ``commandexec`` logger's level, if set.
        command_defaults: Options for commands that set none, if any.
        sources: Key path -> where its value came from, for every value set.
    """

    origin: str
    executors: Mapping[str, ExecutorConfig]
    default_executor: str = "default"
    routes: tuple[tuple[str, str], ...] = ()
    imports: tuple[str, ...] = ()
    registry: str | None = None
    observers: tuple[tuple[str, str], ...] = ()
    cascade_limit: int | None = None
    log_level: int | None = None
    command_defaults: Options | None = None
    sources: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def used_executors(self) -> list[str]:
        """Names of the executors :meth:`build` starts: the default, then each one routed to."""
        return list(dict.fromkeys([self.default_executor, *(name for _, name in self.routes)]))

    def build(self, *, registry: Registry | None = None, events: EventBus | None = None) -> Executor:
        """Import and resolve everything named, then start the executor(s).

        Returns the executor itself for one executor without command defaults,
        else a :class:`~commandexec.executors.routed.RoutedExecutor`.

        Raises:
            ConfigError: if a module, reference or executor cannot be made; any
                executor already started is shut down first.
        """
        r = _Reader(self.origin, dict(self.sources))
        reference = None
        if registry is None and self.registry is not None:
            registry, reference = _resolve(r, "registry", self.registry, Registry), self.registry
        for index, module in enumerate(self.imports):
            try:
                importlib.import_module(module)
            except Exception as exc:
                raise r.fail(f"imports[{index}]", f"names module {module!r}, which cannot be imported: {exc}") from exc
        observers = [(p, _resolve(r, _join("observers", p), ref)) for p, ref in self.observers]
        names = self.used_executors()
        specs = [self.executors[name] for name in names]
        initializers = [
            _resolve(r, _join(s.path, "initializer"), s.options["initializer"]) if "initializer" in s.options else None
            for s in specs
        ]
        routed = len(names) > 1 or bool(self.routes) or self.command_defaults is not None
        limit = DEFAULT_CASCADE_LIMIT if self.cascade_limit is None else self.cascade_limit
        bus = events if events is not None or not routed else EventBus(cascade_limit=limit)
        created: dict[str, Executor] = {}
        try:  # nothing starts half-built: what was started is shut down again
            for spec, initializer in zip(specs, initializers, strict=True):
                created[spec.name] = _create(r, spec, self.imports, registry, reference, bus, initializer)
            executor = created[self.default_executor]
            if routed:
                routes = [(pattern, created[name]) for pattern, name in self.routes]
                close = bus is not events
                executor = RoutedExecutor(
                    routes, executor, events=bus, close_events=close, command_defaults=self.command_defaults
                )
        except BaseException:
            for started in created.values():
                started.shutdown(wait=True, cancel_futures=True)
            if bus is not None and bus is not events:
                bus.close()
            raise
        if not routed and events is None:
            executor.events.cascade_limit = limit
        if events is not None and self.cascade_limit is not None:
            logger.info("%s: cascade_limit not applied: the EventBus passed in keeps its own", self.origin)
        for spec in specs:
            for key in spec.ignored:
                path = _join(spec.path, key)
                logger.info("%s: %s ignored: %r executors do not take it", r.where(path), path, spec.kind)
        for pattern, observer in observers:
            executor.events.subscribe(pattern, observer)
        if self.log_level is not None:
            logger.setLevel(self.log_level)
        return executor


def _resolve(r: _Reader, path: str, reference: str, kind: type | None = None) -> Any:
    try:
        target = resolve_reference(reference)
    except Exception as exc:
        raise r.fail(path, f"names {reference!r}, which cannot be imported: {exc}") from exc
    if kind is not None and not isinstance(target, kind):
        raise r.fail(path, f"names {reference!r}, which is a {type(target).__name__}, not a {kind.__name__}")
    if kind is None and not callable(target):
        raise r.fail(path, f"names {reference!r}, which is not callable: {target!r}")
    return target


class _ImportFirst:
    """A worker process's initializer: import the configured modules, then run the given initializer."""

    def __init__(self, modules: tuple[str, ...], then: Callable[..., object] | None) -> None:
        self.modules = modules
        self.then = then

    def __call__(self, *args: Any) -> None:
        for module in self.modules:
            importlib.import_module(module)
        if self.then is not None:
            self.then(*args)


def _create(
    r: _Reader,
    spec: ExecutorConfig,
    imports: tuple[str, ...],
    registry: Registry | None,
    reference: str | None,
    bus: EventBus | None,
    init: Any,
) -> Executor:
    from .executors.processes import ProcessExecutor

    kwargs = {_PARAMETER.get(key, key): value for key, value in spec.options.items()}
    if "initargs" in kwargs:
        kwargs["initargs"] = tuple(kwargs["initargs"])
    is_pool = isinstance(spec.factory, type) and issubclass(spec.factory, ProcessExecutor)
    if is_pool and imports:
        # Modules that register on import must do so in each worker too (the
        # registry may reach it by reference, holding only what its module registers).
        init = _ImportFirst(imports, init)
    if init is not None:
        kwargs["initializer"] = init
    # Given the registry's reference, each worker process imports the registry itself.
    kwargs["registry"] = reference if reference is not None and is_pool else registry
    where = spec.path or "executor"
    try:
        executor = spec.factory(events=bus, **kwargs)
    except Exception as exc:
        raise r.fail(where, f"could not be created as a {spec.kind!r} executor: {exc}") from exc
    if not isinstance(executor, Executor):
        getattr(executor, "shutdown", lambda: None)()
        raise r.fail(where, f"kind {spec.kind!r} made {executor!r}, which is not a commandexec Executor")
    return executor


def resolve_kind(kind: str) -> Callable[..., Any]:
    """Return the factory of executor *kind*.

    *kind* is a built-in name (``"threads"``...), a name in the entry-point group
    ``commandexec.executors``, or a ``"package.module:Factory"`` reference.

    Raises:
        ConfigError: for an unknown or not-yet-available kind, or one that fails to import.
    """
    try:
        return _factory(kind)
    except _Bad as bad:
        hint = f"; did you mean {bad.suggestion!r}?" if bad.suggestion else ""
        raise ConfigError(f"executor {bad}{hint}") from None


def _factory(kind: str) -> Callable[..., Any]:
    if kind in KINDS:
        return executor_class(kind)
    if kind in _PLANNED:
        raise _Bad(f"is {kind!r}, a kind not available yet in this version (available: {', '.join(KINDS)})")
    if ":" in kind:
        try:
            factory = resolve_reference(kind)
        except Exception as exc:
            raise _Bad(f"is {kind!r}, a factory that cannot be imported: {exc}") from None
    else:
        plugins = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
        found = [ep for ep in plugins if ep.name == kind]
        if not found:
            names = [*KINDS, *sorted({ep.name for ep in plugins})]
            close = difflib.get_close_matches(kind, [*names, *_PLANNED], n=1)
            raise _Bad(f"is {kind!r}, not a known executor kind (available: {', '.join(names)})", *close[:1])
        try:
            factory = found[0].load()
        except Exception as exc:
            raise _Bad(f"is {kind!r}, whose entry point {found[0].value!r} failed to load: {exc}") from None
    if not callable(factory):
        raise _Bad(f"is {kind!r}, which is not callable")
    return factory  # type: ignore[no-any-return]


def _parameters(factory: Callable[..., Any]) -> set[str] | None:
    """Configuration keys *factory* takes (``None``: any, it has ``**kwargs``)."""
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return None
    inverse = {parameter: key for key, parameter in _PARAMETER.items()}
    names = {inverse.get(p.name, p.name) for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return names - {"registry", "events"}


# -- reading ---------------------------------------------------------------------


def load_config(
    source: Mapping[str, Any] | str | os.PathLike[str] | None = None, *, environ: Mapping[str, str] | None = None
) -> Config:
    """Read and validate a configuration, importing nothing and starting nothing.

    Args:
        source: A dict; a path to a ``.toml`` or ``.json`` file or to a
            ``pyproject.toml`` (its ``[tool.commandexec]``); or ``None``:
            ``./commandexec.toml``, else ``[tool.commandexec]`` of
            ``./pyproject.toml``, else the defaults. ``$COMMANDEXEC_CONFIG``,
            when set, replaces it.
        environ: The environment to read (default ``os.environ``; ``{}`` ignores it).

    Raises:
        ConfigError: naming the source, the key path and, where one is close, the
            key or value probably meant.
    """
    environ = os.environ if environ is None else environ
    _check_environment(environ)
    named = environ.get("COMMANDEXEC_CONFIG")
    if named:
        if source is not None:
            logger.info("COMMANDEXEC_CONFIG=%s replaces the configuration passed in", named)
        raw, origin = _read(Path(named), " (COMMANDEXEC_CONFIG)")
    elif isinstance(source, Mapping):
        raw, origin = source, "the configuration dict"
    elif source is not None:
        raw, origin = _read(Path(source))
    else:
        raw, origin = _search(Path.cwd())
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{origin}: a configuration must be a table (mapping), got {type(raw).__name__}")
    raw = copy.deepcopy(dict(raw))
    sources: dict[str, str] = {}
    _apply_environment(raw, environ, sources)
    return _parse(_Reader(origin, sources), raw)


def _read(path: Path, how: str = "", *, required: bool = True) -> tuple[Any, str]:
    """Parse *path*; for a pyproject.toml, its [tool.commandexec] (``None`` if absent and not *required*)."""
    origin = f"{path}{how}"
    if path.suffix not in (".toml", ".json"):
        raise ConfigError(f"{origin}: unsupported file type {path.suffix!r}; use .toml, .json or pyproject.toml")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {origin}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{origin}: not valid {path.suffix[1:].upper()}: {exc}") from None
    if path.name != "pyproject.toml":
        return data, origin
    section = data.get("tool", {}).get("commandexec")
    if section is None and required:
        raise ConfigError(f"{origin}: has no [tool.commandexec] table")
    return section, f"[tool.commandexec] in {origin}"


def _search(directory: Path) -> tuple[Any, str]:
    if (directory / "commandexec.toml").is_file():
        return _read(directory / "commandexec.toml")
    if (directory / "pyproject.toml").is_file():
        section, origin = _read(directory / "pyproject.toml", required=False)
        if section is not None:
            return section, origin
    return {}, "the built-in defaults"


def _check_environment(environ: Mapping[str, str]) -> None:
    """A misspelt COMMANDEXEC_* variable is an error; unrelated ones are left alone."""
    known = [name.removeprefix("COMMANDEXEC_") for name in [*ENVIRONMENT, "COMMANDEXEC_CONFIG"]]
    for name in environ:
        suffix = name.removeprefix("COMMANDEXEC_")
        if suffix != name and suffix not in known:
            close = difflib.get_close_matches(suffix, known, n=1, cutoff=0.8)
            if close:
                raise ConfigError(f"unknown environment variable {name}; did you mean COMMANDEXEC_{close[0]}?")


def _apply_environment(raw: dict[str, Any], environ: Mapping[str, str], sources: dict[str, str]) -> None:
    """Write each COMMANDEXEC_<OPTION> set into *raw*; executor options go to the default executor."""
    for name, (key, convert) in ENVIRONMENT.items():
        text = environ.get(name)
        if not text:
            continue
        try:
            value = convert(text)
        except ValueError:
            wanted = {int: "an integer", float: "a number"}.get(convert, "valid")  # type: ignore[call-overload]
            raise ConfigError(f"environment variable {name}={text!r} is not {wanted}") from None
        default, named = raw.get("default_executor", "default"), raw.get("executors")
        table, path = raw, ("executor" if key == "kind" else key)
        if key in EXECUTOR_KEYS and isinstance(named, Mapping) and default in named:
            executors = raw["executors"] = dict(named)
            table = executors[default] = dict(named[default])
            path = f"executors.{_quote(default)}.{key}"
        elif key.startswith("command_defaults."):
            table = raw["command_defaults"] = dict(raw.get("command_defaults", {}))
            key = key.partition(".")[2]
        else:
            key = path
        table[key] = value
        sources[path] = f"environment variable {name}"


def _parse(r: _Reader, raw: Mapping[str, Any]) -> Config:
    top: dict[str, Any] = {}  # the default executor's options, written at the top level
    found: dict[str, Any] = {}
    sections: dict[str, tuple[dict[str, Any], str]] = {}
    for key, value in raw.items():
        if not isinstance(key, str):
            raise r.fail(repr(key), "is not a string key")
        if key in ("routes", "observers", "command_defaults"):
            continue  # read below, once the executors are known
        if key == "kind":
            raise r.unknown("", key, _TOP_KEYS, "executor")
        if key == "executor":
            top["kind"] = r.check(key, value, _text)
        elif key in EXECUTOR_KEYS:
            top[key] = r.check(key, value, EXECUTOR_KEYS[key])
        elif key in _GLOBAL_KEYS:
            found[key] = r.check(key, value, _GLOBAL_KEYS[key])
        elif key == "executors":
            for name, section in r.table(key, value).items():
                if name == "default":
                    raise r.fail(_join(key, name), "is reserved: the top-level keys configure the default executor")
                sections[name] = (dict(r.table(_join(key, name), section)), _join(key, name))
        else:
            top[key] = value  # a plugin kind's own option, or a typo: judged once the kind is known
    default = found.get("default_executor", "default")
    if default == "default":
        sections["default"] = (top, "")
    elif default not in sections:
        close = difflib.get_close_matches(default, sections, n=1)
        raise r.fail("default_executor", f"names {default!r}, not defined in [executors]", close[0] if close else None)
    elif top:
        key = next(iter(top))
        if key not in EXECUTOR_KEYS:
            raise r.unknown("", key, _TOP_KEYS)
        raise r.fail(
            "executor" if key == "kind" else key,
            f"sets the top-level executor's option, but default_executor = {default!r}: "
            f"move it to [executors.{default}]",
        )
    executors = {name: _executor(r, name, values, path) for name, (values, path) in sections.items()}
    routes = _routes(r, raw.get("routes", []), executors)
    observers = _observers(r, raw.get("observers", {}))
    defaults = _command_defaults(r, raw["command_defaults"]) if "command_defaults" in raw else None
    return Config(
        r.origin,
        executors,
        default,
        routes,
        tuple(found.get("imports", ())),
        found.get("registry"),
        observers,
        found.get("cascade_limit"),
        found.get("log_level"),
        defaults,
        dict(r.sources),
    )


def _executor(r: _Reader, name: str, values: dict[str, Any], path: str) -> ExecutorConfig:
    kind_path = _join(path, "kind") if path else "executor"
    kind = r.check(kind_path, values["kind"], _text) if "kind" in values else DEFAULT_KIND
    try:
        factory = _factory(kind)
    except _Bad as bad:
        raise r.fail(kind_path, str(bad), bad.suggestion) from None
    accepted = _parameters(factory)
    options: dict[str, Any] = {}
    ignored = []
    for key, value in values.items():
        if key == "kind":
            continue
        if key in EXECUTOR_KEYS:
            value = r.check(_join(path, key), value, EXECUTOR_KEYS[key])
            if accepted is not None and key not in accepted:
                ignored.append(key)
                continue
        elif accepted is not None and key not in accepted:
            known = [*EXECUTOR_KEYS, *accepted] if path else [*_TOP_KEYS, *accepted]
            raise r.unknown(path, key, known, "kind" if path and key == "executor" else None)
        r.sources.setdefault(_join(path, key), r.origin)
        options[key] = value
    if options.get("start_method") == "fork" and "max_tasks_per_child" in options:
        raise r.fail(_join(path, "max_tasks_per_child"), "cannot be used with start_method 'fork'")
    return ExecutorConfig(name, kind, factory, options, tuple(ignored), path)


def _routes(r: _Reader, value: Any, executors: Mapping[str, ExecutorConfig]) -> tuple[tuple[str, str], ...]:
    if isinstance(value, Mapping):  # [routes] "pattern" = "executor"
        table = r.table("routes", value)
        entries: list[tuple[str, Mapping[str, Any]]] = [
            (_join("routes", p), {"pattern": p, "executor": e}) for p, e in table.items()
        ]
    elif isinstance(value, list):  # [[routes]] pattern = "...", executor = "..."
        entries = [(f"routes[{i}]", r.table(f"routes[{i}]", route)) for i, route in enumerate(value)]
    else:
        raise r.fail("routes", f"must be a list of tables or a table of pattern = executor, got {value!r}")
    routes = []
    for path, route in entries:
        for key in route:
            if key not in ("pattern", "executor"):
                raise r.unknown(path, key, ["pattern", "executor"])
        if "pattern" not in route or "executor" not in route:
            raise r.fail(path, "needs both a 'pattern' and an 'executor'")
        patterns = route["pattern"] if isinstance(route["pattern"], list) else [route["pattern"]]
        for pattern in patterns:
            r.check(f"{path}.pattern", pattern, _text)
        target = r.check(f"{path}.executor", route["executor"], _text)
        if target not in executors:
            close = difflib.get_close_matches(target, executors, n=1)
            raise r.fail(
                f"{path}.executor",
                f"names {target!r}, not defined in [executors] (defined: {', '.join(executors)})",
                close[0] if close else None,
            )
        routes += [(pattern, target) for pattern in patterns]
    return tuple(routes)


def _observers(r: _Reader, value: Any) -> tuple[tuple[str, str], ...]:
    found = []
    for pattern, references in r.table("observers", value).items():
        if not pattern:
            raise r.fail('observers.""', "is not an event pattern: name events, or match them with globs ('image.*')")
        for reference in references if isinstance(references, list) else [references]:
            found.append((pattern, r.check(_join("observers", pattern), reference, _reference)))
    return tuple(found)


def _command_defaults(r: _Reader, value: Any) -> Options:
    values: dict[str, Any] = {}
    for key, item in r.table("command_defaults", value).items():
        path = _join("command_defaults", key)
        if key not in _OPTION_NAMES:
            raise r.unknown("command_defaults", key, _OPTION_NAMES)
        if key == "retry_on":
            item = tuple(r.check(path, item, _modules))
        try:
            Options(**{key: item})
        except CommandExecError as exc:
            raise r.fail(path, str(exc).replace(f"option {key} ", "")) from None
        r.sources.setdefault(path, r.origin)
        values[key] = item
    return Options(**values)


def from_config(
    source: Mapping[str, Any] | str | os.PathLike[str] | None = None,
    *,
    registry: Registry | None = None,
    events: EventBus | None = None,
    environ: Mapping[str, str] | None = None,
) -> Executor:
    """Build a ready executor from configuration: imports done, observers subscribed.

    Everything is validated, and every module and reference imported, before
    any executor starts; if starting a later one fails, those already started
    are shut down. ``docs/configuration.md`` lists every key.

    Args:
        source: A dict, or a path to a ``.toml``/``.json`` file or a
            ``pyproject.toml``; ``None`` searches as :func:`load_config` says.
            ``$COMMANDEXEC_CONFIG``, when set, replaces it.
        registry: Use this registry (over the ``registry`` key).
        events: Use this event bus (over ``cascade_limit``); observers subscribe to it.
        environ: The environment to read (default ``os.environ``; ``{}`` ignores it).

    Returns:
        The configured executor, or a
        :class:`~commandexec.executors.routed.RoutedExecutor` over several.

    Raises:
        ConfigError: naming the source, the key path and the likely intended key.
    """
    return load_config(source, environ=environ).build(registry=registry, events=events)
