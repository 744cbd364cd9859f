"""Command: an immutable request to run a registered callable, and its options."""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import math
import os
import reprlib
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Self

from .errors import InvalidCommand

__all__ = ["Command", "Options"]

_ids = itertools.count(1)
_prefix = os.urandom(6).hex()


def _new_prefix() -> None:
    # A forked child must never hand out ids its parent already used.
    global _prefix
    _prefix = os.urandom(6).hex()


os.register_at_fork(after_in_child=_new_prefix)


@dataclasses.dataclass(frozen=True, slots=True)
class Options:
    """How a command runs, kept apart from the callable's own keyword arguments.

    Attributes:
        timeout: Seconds the command may run before it fails with ``CommandTimeout``.
        retries: How many times a failed command is run again.
        retry_backoff: First delay, in seconds, before a retry; doubled each time.
        retry_backoff_max: The cap on that delay.
        retry_jitter: Fraction (0..1) of each delay that is randomised.
        retry_on: Exception types (or their names) that allow a retry; empty
            means any exception.
    """

    timeout: float | None = None
    retries: int = 0
    retry_backoff: float = 0.1
    retry_backoff_max: float = 30.0
    retry_jitter: float = 0.1
    retry_on: tuple[type[BaseException] | str, ...] = ()

    def __post_init__(self) -> None:
        if self.timeout is not None and not (_is_number(self.timeout) and self.timeout > 0):
            raise InvalidCommand(f"option timeout must be a positive number, got {self.timeout!r}")
        if type(self.retries) is not int or self.retries < 0:
            raise InvalidCommand(f"option retries must be an int >= 0, got {self.retries!r}")
        for name in ("retry_backoff", "retry_backoff_max"):
            value = getattr(self, name)
            if not (_is_number(value) and value >= 0):
                raise InvalidCommand(f"option {name} must be a number >= 0, got {value!r}")
        if not (_is_number(self.retry_jitter) and 0 <= self.retry_jitter <= 1):
            raise InvalidCommand(f"option retry_jitter must be within 0..1, got {self.retry_jitter!r}")
        retry_on = self.retry_on
        if isinstance(retry_on, (str, type)):
            retry_on = (retry_on,)
        try:
            retry_on = tuple(retry_on)
        except TypeError:
            raise InvalidCommand(f"option retry_on takes exception types or their names, got {retry_on!r}") from None
        for item in retry_on:
            if not (isinstance(item, str) or (isinstance(item, type) and issubclass(item, BaseException))):
                raise InvalidCommand(f"option retry_on takes exception types or their names, got {item!r}")
        object.__setattr__(self, "retry_on", retry_on)

    def to_dict(self) -> dict[str, Any]:
        """Return the options that differ from the defaults, as JSON-able values."""
        out: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value != field.default:
                out[field.name] = value
        if "retry_on" in out:
            out["retry_on"] = [_type_name(t) for t in self.retry_on]
        return out


def _is_number(value: object) -> bool:
    return type(value) in (int, float) and math.isfinite(value)  # type: ignore[arg-type]


def _type_name(item: type[BaseException] | str) -> str:
    if isinstance(item, str):
        return item
    if item.__module__ == "builtins":
        return item.__qualname__
    return f"{item.__module__}.{item.__qualname__}"


_OPTION_NAMES = tuple(f.name for f in dataclasses.fields(Options))
DEFAULT_OPTIONS = Options()


class Command:
    """An immutable request to run the callable registered under *key*.

    ``Command("resize", "a.png", width=64)`` asks for ``resize("a.png", width=64)``.
    A command is immutable: its attributes are read-only and every change
    (:meth:`with_options`, :meth:`caused_by`) returns a copy.
    Options that belong to the framework, not the callable, are set with
    :meth:`with_options`, so they never collide with the callable's keywords.

    A command may also wrap a callable directly (``Command(fn, 1, 2)``); that is
    what ``executor.submit(fn, *args)`` builds, exactly as the stdlib executors do.

    Attributes:
        key: The registry key (for a wrapped callable, its qualified name).
        args: Positional arguments, a tuple.
        kwargs: Keyword arguments, a read-only mapping.
        id: A unique id, kept by :meth:`with_options` and when the framework
            fills in causation.
        options: The command's :class:`Options`.
        parent_id: The id of the command whose event or composite caused this one.
        root_id: The id of the first command of that chain (its own id if none).
        depth: How many causation steps separate it from its root.
    """

    __slots__ = (
        "_args", "_depth", "_fn", "_id", "_key", "_kwargs",
        "_options", "_parent_id", "_root_id", "_seq",
    )  # fmt: skip

    _key: str | None
    _fn: Callable[..., Any] | None
    _args: tuple[Any, ...]
    _kwargs: dict[str, Any]
    _id: str | None
    _seq: int
    _options: Options
    _parent_id: str | None
    _root_id: str | None
    _depth: int

    def __init__(self, key: str | Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
        if type(key) is str:
            if not key:
                raise InvalidCommand("a command key must be a non-empty string")
            self._key = key
            self._fn = None
        elif callable(key):
            self._key = None
            self._fn = key
        elif isinstance(key, str) and key:
            # A str subclass (e.g. a StrEnum member) names a key too; store the
            # plain string so to_dict, JSON and pickle carry no enum type.
            self._key = str.__str__(key)
            self._fn = None
        else:
            raise InvalidCommand(f"a command needs a registry key (str) or a callable, got {type(key).__name__}")
        self._args = args
        self._kwargs = kwargs
        # The id string is formatted on first use: most commands never need it,
        # and formatting costs a third of building a command.
        self._id = None
        self._seq = next(_ids)
        self._options = DEFAULT_OPTIONS
        self._parent_id = None
        self._root_id = None
        self._depth = 0

    # -- read-only attributes -------------------------------------------------

    @property
    def key(self) -> str:
        """The registry key, or the qualified name of a wrapped callable."""
        if self._key is not None:
            return self._key
        fn = self._fn
        module = getattr(fn, "__module__", None) or "?"
        name = getattr(fn, "__qualname__", None) or type(fn).__qualname__
        return f"{module}:{name}"

    @property
    def fn(self) -> Callable[..., Any] | None:
        """The wrapped callable, or ``None`` when the command names a registry key."""
        return self._fn

    @property
    def args(self) -> tuple[Any, ...]:
        """Positional arguments for the callable."""
        return self._args

    @property
    def kwargs(self) -> Mapping[str, Any]:
        """Keyword arguments for the callable (a read-only view)."""
        return MappingProxyType(self._kwargs)

    @property
    def id(self) -> str:
        """This command's unique id."""
        id = self._id
        if id is None:
            id = self._id = f"{_prefix}-{self._seq:x}"
        return id

    @property
    def options(self) -> Options:
        """This command's options."""
        return self._options

    @property
    def parent_id(self) -> str | None:
        """Id of the command that caused this one, if any."""
        return self._parent_id

    @property
    def root_id(self) -> str:
        """Id of the first command of this causation chain."""
        return self._root_id if self._root_id is not None else self.id

    @property
    def depth(self) -> int:
        """Number of causation steps from the root command."""
        return self._depth

    # -- derived commands -----------------------------------------------------

    def _copy(self) -> Self:
        # type(self), not Command: a subclass (a composite) copies its own slots on top.
        cls = type(self)
        new = cls.__new__(cls)
        new._key = self._key
        new._fn = self._fn
        new._args = self._args
        new._kwargs = self._kwargs
        new._id = self.id
        new._seq = self._seq
        new._options = self._options
        new._parent_id = self._parent_id
        new._root_id = self._root_id
        new._depth = self._depth
        return new

    def with_options(self, **options: Any) -> Command:
        """Return a copy with *options* changed (same id, args and kwargs).

        Raises:
            InvalidCommand: for an unknown option name or an invalid value.
        """
        for name in options:
            if name not in _OPTION_NAMES:
                close = difflib.get_close_matches(name, _OPTION_NAMES, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f"; options are {', '.join(_OPTION_NAMES)}"
                raise InvalidCommand(f"unknown command option {name!r}{hint}")
        new = self._copy()
        new._options = dataclasses.replace(self._options, **options)
        return new

    def caused_by(self, parent: Command) -> Command:
        """Return a copy recording *parent* as its cause (parent, root, depth + 1)."""
        new = self._copy()
        new._parent_id = parent.id
        new._root_id = parent.root_id
        new._depth = parent._depth + 1
        return new

    # -- value semantics ------------------------------------------------------

    def _fields(self) -> tuple[Any, ...]:
        return (
            self._key, self._fn, self._args, self._kwargs, self.id,
            self._options, self._parent_id, self._root_id, self._depth,
        )  # fmt: skip

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Command):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        parts = [repr(self._key) if self._key is not None else self.key]
        parts += [_short.repr(a) for a in self._args]
        parts += [f"{k}={_short.repr(v)}" for k, v in self._kwargs.items()]
        text = f"Command({', '.join(parts)}, id={self.id!r})"
        options = self._options.to_dict()
        if options:
            text += ".with_options(" + ", ".join(f"{k}={v!r}" for k, v in options.items()) + ")"
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, self._fields())

    # -- JSON ----------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Describe this command as plain data (JSON-able when its arguments are).

        Raises:
            InvalidCommand: if the command wraps a callable instead of naming a key.
        """
        if self._key is None:
            raise InvalidCommand(
                f"{self!r} wraps a callable and has no registry key; register the callable "
                "and name its key to describe the command as data"
            )
        out: dict[str, Any] = {
            "key": self._key,
            "args": list(self._args),
            "kwargs": dict(self._kwargs),
            "id": self.id,
        }
        options = self._options.to_dict()
        if options:
            out["options"] = options
        if self._parent_id is not None:
            out["parent_id"] = self._parent_id
            out["root_id"] = self._root_id
            out["depth"] = self._depth
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Command:
        """Rebuild a command from :meth:`to_dict` output, validating every field.

        A description with a ``composite`` field rebuilds a composite
        (:class:`~commandexec.Sequential`, :class:`~commandexec.Parallel` or
        :class:`~commandexec.Pipeline`) and its children.

        Raises:
            InvalidCommand: naming the first field that is missing or of the wrong type.
        """
        if not isinstance(data, Mapping):
            raise InvalidCommand(f"a command description must be a mapping, got {type(data).__name__}")
        if "composite" in data:
            from .composite import composite_from_dict  # composite.py imports this module

            composite = composite_from_dict(data)
            if not isinstance(composite, cls):
                raise InvalidCommand(f"{cls.__name__}.from_dict() got a {type(composite).__name__} description")
            return composite
        unknown = set(data) - _DICT_FIELDS
        if unknown:
            # repr as the sort key: untrusted data may mix key types that do not compare.
            shown = ", ".join(sorted(map(repr, unknown)))
            raise InvalidCommand(f"unknown command field(s) {shown}; fields are {', '.join(sorted(_DICT_FIELDS))}")
        key = data.get("key")
        if type(key) is not str or not key:
            raise InvalidCommand(f"command field 'key' must be a non-empty string, got {key!r}")
        args = data.get("args", [])
        if not isinstance(args, (list, tuple)):
            raise InvalidCommand(f"command field 'args' must be a list, got {type(args).__name__}")
        kwargs = data.get("kwargs", {})
        if not isinstance(kwargs, Mapping) or not all(type(k) is str for k in kwargs):
            raise InvalidCommand("command field 'kwargs' must be a mapping with string keys")
        command = cls(key, *args, **kwargs)
        if "id" in data:
            if type(data["id"]) is not str or not data["id"]:
                raise InvalidCommand(f"command field 'id' must be a non-empty string, got {data['id']!r}")
            command._id = data["id"]
        options = data.get("options", {})
        if not isinstance(options, Mapping) or not all(type(k) is str for k in options):
            raise InvalidCommand("command field 'options' must be a mapping with string keys")
        if options:
            options = dict(options)
            if "retry_on" in options:
                retry_on = options["retry_on"]
                if not isinstance(retry_on, list) or not all(type(n) is str for n in retry_on):
                    raise InvalidCommand("command option 'retry_on' must be a list of type names")
                options["retry_on"] = tuple(retry_on)
            try:
                command = command.with_options(**options)
            except InvalidCommand as exc:
                raise InvalidCommand(f"command field 'options': {exc}") from None
        parent_id, root_id, depth = data.get("parent_id"), data.get("root_id"), data.get("depth")
        if parent_id is None:
            # Causation without a parent would be silently dropped: refuse it instead.
            if root_id is not None or not (depth is None or (type(depth) is int and depth == 0)):
                raise InvalidCommand(
                    f"command fields 'root_id' and 'depth' need a 'parent_id'; got root_id={root_id!r}, depth={depth!r}"
                )
        else:
            for name, value in (("parent_id", parent_id), ("root_id", root_id)):
                if type(value) is not str or not value:
                    raise InvalidCommand(f"command field {name!r} must be a non-empty string, got {value!r}")
            if type(depth) is not int or depth < 1:
                raise InvalidCommand(f"command field 'depth' must be an int >= 1, got {depth!r}")
            command._parent_id, command._root_id, command._depth = parent_id, root_id, depth
        return command


_DICT_FIELDS = frozenset({"key", "args", "kwargs", "id", "options", "parent_id", "root_id", "depth"})

_short = reprlib.Repr()
_short.maxstring = 40
_short.maxother = 40


def _rebuild(
    key: str | None,
    fn: Callable[..., Any] | None,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    id: str,
    options: Options,
    parent_id: str | None,
    root_id: str | None,
    depth: int,
) -> Command:
    new = Command.__new__(Command)
    new._key, new._fn, new._args, new._kwargs, new._id, new._seq = key, fn, args, kwargs, id, 0
    new._options, new._parent_id, new._root_id, new._depth = options, parent_id, root_id, depth
    return new
