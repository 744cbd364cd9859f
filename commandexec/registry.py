"""Registry: maps command keys to plain callables, eagerly or by lazy import reference."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, overload

from .errors import DuplicateCommand, UnknownCommand

__all__ = ["Registry", "registry", "resolve_reference"]

F = TypeVar("F", bound=Callable[..., Any])


def _check_reference(reference: str) -> None:
    module, sep, attr = reference.partition(":")
    if not sep or not module or not attr or not all(p.isidentifier() for p in module.split(".") + attr.split(".")):
        raise ValueError(f"{reference!r} is not an import reference of the form 'package.module:attr'")


def resolve_reference(reference: str) -> Any:
    """Import ``"package.module:attr.sub"`` and return the object it names.

    Raises:
        ValueError: if *reference* is not of that form.
        ImportError: if the module cannot be imported or lacks the attribute.
    """
    _check_reference(reference)
    module_name, _, attr_path = reference.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ImportError(f"{reference!r}: {obj!r} has no attribute {part!r}") from None
    return obj


class Registry:
    """Maps string keys to callables.

    Anything callable can be registered: functions, bound methods, objects with
    ``__call__``, coroutine functions, or a lazy ``"package.module:attr"``
    reference that is imported the first time the key is resolved (so a worker
    process resolves the key without receiving code).

    >>> registry = Registry()
    >>> registry.register("add", lambda a, b: a + b)
    >>> registry.resolve("add")(1, 2)
    3
    """

    def __init__(self) -> None:
        self._callables: dict[str, Callable[..., Any]] = {}
        self._references: dict[str, str] = {}  # key -> lazy reference, kept for pickling
        self._lock = threading.Lock()

    @overload
    def register(self, key: str, fn: Callable[..., Any] | str, *, replace: bool = ...) -> None: ...
    @overload
    def register(self, key: str, fn: None = ..., *, replace: bool = ...) -> Callable[[F], F]: ...
    @overload
    def register(self, key: F, fn: None = ..., *, replace: bool = ...) -> F: ...

    def register(
        self,
        key: str | F,
        fn: Callable[..., Any] | str | None = None,
        *,
        replace: bool = False,
    ) -> Callable[[F], F] | F | None:
        """Register *fn* under *key*.

        ``register("key", fn)`` registers directly; ``@register("key")`` and a bare
        ``@register`` (key = the function's ``__name__``) are decorator forms that
        return the function unchanged. *fn* may be an import reference string.

        Raises:
            DuplicateCommand: if *key* is taken and *replace* is false.
            TypeError: if *fn* is neither callable nor a reference string.
            ValueError: if *key* is empty or a reference string is malformed.
        """
        if callable(key) and fn is None:
            target = key
            self._add(getattr(target, "__name__", ""), target, replace)
            return target
        if not isinstance(key, str) or not key:
            raise ValueError(f"a command key must be a non-empty string, got {key!r}")
        if fn is None:
            name = key

            def decorator(target: F) -> F:
                self._add(name, target, replace)
                return target

            return decorator
        self._add(key, fn, replace)
        return None

    def _add(self, key: str, fn: Callable[..., Any] | str, replace: bool) -> None:
        if not key:
            raise ValueError(f"cannot derive a command key from {fn!r}; pass one")
        if isinstance(fn, str):
            _check_reference(fn)
        elif not callable(fn):
            raise TypeError(f"cannot register {key!r}: {fn!r} ({type(fn).__name__}) is not callable")
        with self._lock:
            if not replace and key in self:
                raise DuplicateCommand(f"command {key!r} is already registered; pass replace=True to override it")
            self._callables.pop(key, None)
            self._references.pop(key, None)
            if isinstance(fn, str):
                self._references[key] = fn
            else:
                self._callables[key] = fn

    def unregister(self, key: str) -> None:
        """Remove *key*.

        Raises:
            UnknownCommand: if *key* is not registered.
        """
        with self._lock:
            if key not in self:
                raise UnknownCommand(key, self.keys())
            self._callables.pop(key, None)
            self._references.pop(key, None)

    def resolve(self, key: str) -> Callable[..., Any]:
        """Return the callable registered under *key*, importing a lazy reference once.

        Raises:
            UnknownCommand: if *key* is not registered (names close matches).
            ImportError: if a lazy reference cannot be imported.
            TypeError: if a lazy reference names something that is not callable.
        """
        fn = self._callables.get(key)
        if fn is not None:
            return fn
        return self._resolve_slow(key)

    def _resolve_slow(self, key: str) -> Callable[..., Any]:
        with self._lock:
            fn = self._callables.get(key)
            if fn is not None:
                return fn
            reference = self._references.get(key)
            if reference is None:
                raise UnknownCommand(key, self.keys())
        # Import without holding the lock: the imported module commonly registers
        # commands itself (decorators at import time), which takes the lock again.
        # The import system serialises concurrent imports of one module.
        try:
            target: Callable[..., Any] = resolve_reference(reference)
        except ImportError as exc:
            raise ImportError(f"command {key!r} refers to {reference!r}, which cannot be imported: {exc}") from exc
        if not callable(target):
            raise TypeError(f"command {key!r} refers to {reference!r}, which is not callable: {target!r}")
        with self._lock:
            # Cache only if the key was not replaced or unregistered meanwhile.
            if self._references.get(key) == reference:
                self._callables[key] = target
        return target

    def describe(self, key: str) -> str:
        """Return the first line of the docstring of *key*'s callable (``""`` if none)."""
        doc = getattr(self.resolve(key), "__doc__", None) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""

    def keys(self) -> list[str]:
        """Return the registered keys, sorted."""
        return sorted(set(self._callables) | set(self._references))

    def __contains__(self, key: object) -> bool:
        return key in self._callables or key in self._references

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(set(self._callables) | set(self._references))

    def __repr__(self) -> str:
        return f"<Registry with {len(self)} command(s)>"

    def __reduce__(self) -> tuple[Any, ...]:
        # Lazy references travel as strings, so a worker imports them itself.
        entries: dict[str, Callable[..., Any] | str] = dict(self._callables)
        entries.update(self._references)
        return (_rebuild_registry, (entries,))


def _rebuild_registry(entries: dict[str, Callable[..., Any] | str]) -> Registry:
    new = Registry()
    for key, fn in entries.items():
        new._add(key, fn, replace=False)
    return new


registry = Registry()
"""The default registry, used by every executor not given ``registry=``."""
