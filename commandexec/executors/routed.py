"""RoutedExecutor: one executor that sends each command to another by its key.

Configuration builds one when it names several executors (``[executors.cpu]``,
``[executors.io]``) and routes between them, but it is an ordinary executor and
can be built by hand::

    bus = ce.EventBus()
    cpu = ce.ProcessExecutor(events=bus)
    io = ce.ThreadExecutor(events=bus)
    executor = RoutedExecutor({"resize": cpu, "thumbnail.*": cpu}, default=io)

Application code cannot tell it from a single executor: composites are
orchestrated here, so each child goes through :meth:`~Executor.submit` and is
routed by its own key; follow-ups that observers return are routed the same
way, whichever child ran the command that caused them; retries, lifecycle
events, ``drain``, ``wait_cascade``, ``map`` and ``shutdown`` cover every child.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from typing import Any

from ..command import DEFAULT_OPTIONS, Command, Options
from ..events import EventBus
from ..runtime import run_chunk
from .base import Executor, check_not_shutdown

__all__ = ["RoutedExecutor"]

_GLOB = frozenset("*?[")


class RoutedExecutor(Executor):
    """Runs each command on the executor its key is routed to.

    Routes are tried in order and the first pattern that matches the key wins
    (exact names or :mod:`fnmatch` globs such as ``"thumbnail.*"``); a key that
    no route matches, and a plain callable (``submit(fn, ...)``), goes to
    *default*. ``map(key, ..., chunksize=n)`` chunks follow the route of *key*.

    The routed executors must share one :class:`~commandexec.EventBus`, so an
    observer subscribes once and sees every command's events; the follow-ups
    it returns are routed like any command. The routed executor owns its
    children: ``shutdown`` shuts every one down.

    Args:
        routes: Key pattern -> executor, in the order they are tried.
        default: The executor for everything no route matches.
        events: The bus every child publishes to; by default *default*'s.
        close_events: Also close *events* at shutdown (for a bus made for it).
        command_defaults: Options given to every command that sets none
            (``Command.with_options`` was never called on it); composites
            keep theirs, and their children get the defaults.

    Raises:
        TypeError: if a route's target or *default* is not a commandexec Executor.
        ValueError: for an empty pattern, or a child publishing to another bus.
    """

    kind = "routed"

    def __init__(
        self,
        routes: Mapping[str, Executor] | Iterable[tuple[str, Executor]],
        default: Executor,
        *,
        events: EventBus | None = None,
        close_events: bool = False,
        command_defaults: Options | None = None,
    ) -> None:
        pairs = list(routes.items() if isinstance(routes, Mapping) else routes)
        for pattern, target in [*pairs, ("(default)", default)]:
            if not isinstance(pattern, str) or not pattern:
                raise ValueError(f"a route pattern must be a non-empty string, got {pattern!r}")
            if not isinstance(target, Executor):
                raise TypeError(f"route {pattern!r} leads to {target!r}, which is not a commandexec Executor")
        bus = default.events if events is None else events
        children: list[Executor] = []
        for target in [default, *(target for _, target in pairs)]:
            if target.events is not bus:
                raise ValueError(f"{target!r} publishes to another EventBus; every routed executor must share one")
            if all(target is not child for child in children):
                children.append(target)
        super().__init__(registry=default.registry, events=bus)
        self._owns_events = close_events
        self._routes = tuple(pairs)
        self._default = default
        self._children = tuple(children)
        self._cache: dict[str, Executor] = {}
        self._defaults = None if command_defaults is None else _changed(command_defaults)
        for child in children:
            _adopt(child, self)

    @property
    def routes(self) -> tuple[tuple[str, Executor], ...]:
        """The ``(pattern, executor)`` routes, in the order they are tried."""
        return self._routes

    @property
    def default(self) -> Executor:
        """The executor for commands no route matches."""
        return self._default

    @property
    def executors(self) -> tuple[Executor, ...]:
        """Every executor this one routes to, the default first, each once."""
        return self._children

    def route(self, key: str) -> Executor:
        """Return the executor a command with *key* runs on."""
        found = self._cache.get(key)
        if found is None:
            found = self._default
            for pattern, target in self._routes:
                if pattern == key if _GLOB.isdisjoint(pattern) else fnmatch.fnmatchcase(key, pattern):
                    found = target
                    break
            if len(self._cache) < 4096:
                self._cache[key] = found
        return found

    def submit(self, fn: Command | str | Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        defaults = self._defaults
        if defaults is not None:
            if not isinstance(fn, Command) and (isinstance(fn, str) or callable(fn)):
                fn, args, kwargs = Command(fn, *args, **kwargs), (), {}
            if type(fn) is Command and fn._options is DEFAULT_OPTIONS:
                fn = fn.with_options(**defaults)
        return super().submit(fn, *args, **kwargs)

    submit.__doc__ = Executor.submit.__doc__

    def _submit(self, command: Command) -> Future[Any]:
        check_not_shutdown(self)
        fn = command._fn
        if fn is None:
            target = self.route(command._key)  # type: ignore[arg-type]
        elif fn is run_chunk and command._args and isinstance(command._args[0], str):
            target = self.route(command._args[0])  # map(key, ..., chunksize=n): the key's route
        else:
            target = self._default
        # The child's _submit, not its submit: this executor already published
        # command.submitted and handles retries, so neither happens twice.
        return target._submit(command)

    def _unfinished(self) -> int:
        return sum(child._unfinished() for child in self._children)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._shutdown = True
        error: BaseException | None = None
        for child in self._children:
            try:
                child.shutdown(wait, cancel_futures=cancel_futures)
            except BaseException as exc:  # shut the others down all the same
                error = error or exc
        self._quiet.notify()
        self._close_timer_and_events(wait)
        if error is not None:
            raise error

    shutdown.__doc__ = Executor.shutdown.__doc__

    def __repr__(self) -> str:
        state = "shut down" if self._shutdown else "running"
        shown = [f"{pattern!r} -> {type(target).__name__}" for pattern, target in self._routes]
        shown.append(f"default -> {type(self._default).__name__}")
        return f"<RoutedExecutor {state}: {', '.join(shown)}>"


def _changed(options: Options) -> dict[str, Any]:
    """The fields of *options* that differ from the built-in defaults, as keywords."""
    return {name: getattr(options, name) for name in options.__dataclass_fields__ if name in options.to_dict()}


def _adopt(child: Executor, owner: RoutedExecutor) -> None:
    """Make *child* hand follow-ups (and their cascade counts) to *owner*.

    Children publish their commands' events with themselves as the executor, and
    the bus submits observers' follow-ups there; redirected, those follow-ups are
    routed by key and counted where ``drain``/``wait_cascade`` look.
    """
    vars(child).update(
        _submit_follow_up=owner._submit_follow_up,
        _cascade_add=owner._cascade_add,
        _cascade_done=owner._cascade_done,
    )
