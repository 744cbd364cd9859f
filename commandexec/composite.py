"""Composite commands: Sequential, Parallel and Pipeline, orchestrated by callbacks.

A composite is a :class:`~commandexec.Command` whose children are commands or
composites, nested to any depth. ``executor.submit(composite)`` returns a plain
``concurrent.futures.Future`` at once; children are submitted through the same
executor from done-callbacks of their siblings' futures, on the client side, so
a composite never occupies a worker and cannot deadlock a small pool.

Semantics the class docstrings do not repeat:

- A composite given a value by a :class:`Pipeline` passes it on: a Sequential or
  Parallel to each of its children, a Pipeline to its first child.
- An error from a child gets a note ``in child [1, 0] 'resize' of Sequential``:
  the index path from the outermost composite, the key, that composite's class.
  The error the outermost composite raises has ``partial_results``, a dict from
  the index path of every child (at any depth) that completed to its result.
- Cancelling a composite's future cancels its pending children and submits no
  more (running ones finish; their results are dropped). A child cancelled by
  someone else (``shutdown(cancel_futures=True)``) cancels its composite. The
  future stays PENDING (never RUNNING) until it completes, so it can be cancelled.
- The ``timeout`` option (the only one a composite takes) fails the composite
  with ``CommandTimeout`` and cancels its pending children; each child's own
  timeout is separate.
- Each child runs as ``child.caused_by(composite)``: one more ``depth`` per level.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import threading
from collections.abc import Mapping
from concurrent.futures import CancelledError, Future, InvalidStateError
from concurrent.futures._base import FINISHED
from typing import TYPE_CHECKING, Any, ClassVar, Self, cast

from .command import DEFAULT_OPTIONS, Command
from .errors import CommandTimeout, InvalidCommand

if TYPE_CHECKING:
    from .executors.base import Executor
    from .timers import TimerHandle

__all__ = ["Composite", "Parallel", "Pipeline", "Sequential", "composite_from_dict"]

IndexPath = tuple[int, ...]
_SEQUENTIAL, _PARALLEL, _PIPELINE = 0, 1, 2
_MISSING: Any = object()  # no result yet / no input value
_CANCEL: Any = object()  # ready-queue signals besides children's futures
_TIMEOUT: Any = object()


class Composite(Command):
    """Base of :class:`Sequential`, :class:`Parallel` and :class:`Pipeline`: a command of commands.

    Immutable, with an id, options and causation fields like any command; its
    key is its class name. Submit it to any executor like any command.

    Attributes:
        children: The child commands, in order.
    """

    __slots__ = ("_children", "_link")
    _kind: ClassVar[int]
    _name: ClassVar[str]  # in to_dict()
    _extra: ClassVar[tuple[str, ...]] = ()  # keyword arguments besides the children, kept as "_" + name
    _children: tuple[Command, ...]
    _link: tuple[_Run, int, Any] | None  # set only on the private copy a parent submits

    def __init__(self, *children: Command) -> None:
        if type(self) is Composite:
            raise TypeError("Composite is abstract; use Sequential, Parallel or Pipeline")
        for index, child in enumerate(children):
            if not isinstance(child, Command):
                raise InvalidCommand(f"child {index} of {type(self).__name__} must be a Command, got {child!r}")
        super().__init__(type(self).__name__)
        self._children = children
        self._link = None

    @property
    def children(self) -> tuple[Command, ...]:
        """The child commands, in order."""
        return self._children

    def _extras(self) -> dict[str, Any]:
        return {name: getattr(self, "_" + name) for name in self._extra}

    def _copy(self) -> Self:
        new = super()._copy()
        new._children, new._link = self._children, None
        for name, value in self._extras().items():
            setattr(new, "_" + name, value)
        return new

    def with_options(self, **options: Any) -> Self:
        for name, value in options.items():
            if name != "timeout" and hasattr(DEFAULT_OPTIONS, name) and value != getattr(DEFAULT_OPTIONS, name):
                raise InvalidCommand(
                    f"{type(self).__name__} takes only the 'timeout' option, got {name}={value!r}; "
                    "set it on the children instead"
                )
        return cast(Self, super().with_options(**options))

    def _fields(self) -> tuple[Any, ...]:
        return (*super()._fields(), type(self), self._children, self._extras())

    def __repr__(self) -> str:
        # Children of children are summarised: a tree may be wide and deep.
        shown = [
            f"{type(c).__name__}(<{len(c._children)} children>, id={c.id!r})" if isinstance(c, Composite) else repr(c)
            for c in self._children[:4]
        ]
        if len(self._children) > 4:
            shown.append(f"... {len(self._children) - 4} more")
        shown += [f"{k}={v!r}" for k, v in self._extras().items() if v]
        text = f"{type(self).__name__}({', '.join(shown)}, id={self.id!r})"
        timeout = self._options.timeout
        return text if timeout is None else f"{text}.with_options(timeout={timeout!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        fields = (self.id, self._options, self._parent_id, self._root_id, self._depth)
        return (_rebuild, (type(self), self._children, self._extras(), *fields))

    def to_dict(self) -> dict[str, Any]:
        """Describe this composite and its children as plain data (``{"composite": ...}``).

        Raises:
            InvalidCommand: if a child, at any depth, wraps a callable instead of naming a key.
        """
        header = super().to_dict()  # id, options and causation, as any command has them
        children = []
        for index, child in enumerate(self._children):
            try:
                children.append(child.to_dict())
            except InvalidCommand as exc:
                raise InvalidCommand(f"child {index} of {type(self).__name__}: {exc}") from None
        out: dict[str, Any] = {"composite": self._name, "children": children}
        out.update((k, v) for k, v in self._extras().items() if v)
        out.update((k, v) for k, v in header.items() if k not in ("key", "args", "kwargs"))
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Command:
        """Rebuild a composite from :meth:`to_dict` output, validating every field.

        Raises:
            InvalidCommand: naming the first field (and the child's index path) that is wrong.
        """
        if not isinstance(data, Mapping) or "composite" not in data:
            raise InvalidCommand(f"{cls.__name__}.from_dict() needs a composite description (a 'composite' field)")
        return super().from_dict(data)

    def _run_on(self, executor: Executor) -> Future[Any]:
        """Start this composite on *executor* (``Executor.submit`` calls this)."""
        if executor._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")
        link, self._link = self._link, None
        run = _Run(self, executor, link)
        future = run.start()
        if link is not None:  # only now: a child that failed to start is noted by its parent
            link[0].subruns[link[1]] = run
        return future


class Sequential(Composite):
    """Runs its children one after another; the result is the list of their results.

    Stops at the first failure and raises that child's error; later children never run.
    """

    __slots__ = ()
    _kind, _name = _SEQUENTIAL, "sequential"


class Pipeline(Composite):
    """Runs its children one after another, passing each result to the next; returns the last.

    Each result is prepended to the next child's positional arguments:
    ``Pipeline(Command("load", path), Command("resize", width=64))`` runs
    ``resize(load(path), width=64)``. Stops at the first failure, as
    :class:`Sequential` does.

    Raises:
        InvalidCommand: if given no children.
    """

    __slots__ = ()
    _kind, _name = _PIPELINE, "pipeline"

    def __init__(self, *children: Command) -> None:
        if not children:
            raise InvalidCommand("a Pipeline needs at least one child")
        super().__init__(*children)


class Parallel(Composite):
    """Submits all its children at once; the result is the list of their results, in child order.

    Args:
        children: The commands to run.
        collect_all: Run every child even when some fail, then raise an
            ``ExceptionGroup`` of every failure. By default the first failure
            cancels the pending siblings and raises an ``ExceptionGroup`` at once.
    """

    __slots__ = ("_collect_all",)
    _kind, _name, _extra = _PARALLEL, "parallel", ("collect_all",)
    _collect_all: bool

    def __init__(self, *children: Command, collect_all: bool = False) -> None:
        if type(collect_all) is not bool:
            raise InvalidCommand(f"collect_all must be True or False, got {collect_all!r}")
        super().__init__(*children)
        self._collect_all = collect_all

    @property
    def collect_all(self) -> bool:
        """Whether every child runs even when some fail."""
        return self._collect_all


_KINDS: dict[str, type[Composite]] = {cls._name: cls for cls in (Sequential, Parallel, Pipeline)}
_HEADER_FIELDS = ("id", "options", "parent_id", "root_id", "depth")


def _rebuild(cls: type[Composite], children: tuple[Command, ...], extra: dict[str, Any], *fields: Any) -> Composite:
    new = cls(*children, **extra)
    new._id, new._options, new._parent_id, new._root_id, new._depth = fields
    return new


def composite_from_dict(data: Mapping[str, Any], path: IndexPath = ()) -> Composite:
    """Rebuild a composite from its ``to_dict()`` description (``Command.from_dict`` calls this).

    Raises:
        InvalidCommand: naming the index path and the field that is wrong.
    """
    where = f"composite child {list(path)}" if path else "composite"
    name = data.get("composite")
    cls = _KINDS.get(name) if isinstance(name, str) else None
    if cls is None:
        raise InvalidCommand(f"{where} field 'composite' must be one of {', '.join(map(repr, _KINDS))}, got {name!r}")
    unknown = set(data) - {"composite", "children", *_HEADER_FIELDS, *cls._extra}
    if unknown:
        raise InvalidCommand(f"{where}: unknown field(s) {', '.join(sorted(map(repr, unknown)))}")
    described = data.get("children")
    if not isinstance(described, (list, tuple)):
        raise InvalidCommand(f"{where} field 'children' must be a list, got {type(described).__name__}")
    children: list[Command] = []
    try:
        for index, child in enumerate(described):
            if isinstance(child, Mapping) and "composite" in child:
                children.append(composite_from_dict(child, (*path, index)))
                continue
            try:
                children.append(Command.from_dict(child))
            except InvalidCommand as exc:
                raise InvalidCommand(f"composite child {[*path, index]}: {exc}") from None
    except RecursionError:
        raise InvalidCommand(f"{where} nests too deeply to rebuild") from None
    try:
        composite = cls(*children, **{k: data[k] for k in cls._extra if k in data})
        # The header fields are validated exactly as a plain command's are.
        header = Command.from_dict({"key": cls.__name__, **{k: data[k] for k in _HEADER_FIELDS if k in data}})
        changed = {f.name: getattr(header.options, f.name) for f in dataclasses.fields(header.options)}
        composite = composite.with_options(**{k: v for k, v in changed.items() if v != getattr(DEFAULT_OPTIONS, k)})
    except InvalidCommand as exc:
        raise InvalidCommand(f"{where}: {exc}") from None
    composite._id = header.id
    composite._parent_id, composite._root_id, composite._depth = header._parent_id, header._root_id, header._depth
    return composite


# -- orchestration ---------------------------------------------------------------
# One _Run per submitted composite, nested ones included. Whatever happens to it
# (a child done, its future cancelled, its timeout) is queued on it; the thread
# that finds it idle drives it, one item at a time, so its state needs no lock
# and only one thread drives it. The lock guards just the queue and the flag, and
# nothing is called under it. Drives never nest on a thread: a run started or
# woken while the thread drives another (an inline child done inside submit, a
# nested composite started by its parent) waits on the thread's trampoline, so
# long pipelines and deep nesting on the InlineExecutor use a fixed stack.

_local = threading.local()


def _schedule(run: _Run) -> None:
    queue: collections.deque[_Run] | None = getattr(_local, "queue", None)
    if queue is not None:
        queue.append(run)
        return
    queue = _local.queue = collections.deque((run,))
    reraise: BaseException | None = None
    try:
        while queue:
            error = queue.popleft()._drive()
            if reraise is None:
                reraise = error
    finally:
        _local.queue = None
    if reraise is not None:  # e.g. Ctrl-C in an inline child: the caller's, once every run is complete
        raise reraise


class _Run:
    __slots__ = (
        "active", "children", "collect_all", "composite", "driving", "errors", "executor", "finished", "future",
        "input", "kind", "lock", "next", "path", "ready", "remaining", "results", "root", "subruns", "timer",
    )  # fmt: skip

    def __init__(self, composite: Composite, executor: Executor, link: tuple[_Run, int, Any] | None) -> None:
        self.composite = composite
        self.executor: Executor | None = executor
        self.children = composite._children
        self.kind = composite._kind
        self.collect_all: bool = getattr(composite, "_collect_all", False)
        self.future = executor._new_future(composite)  # publishes lifecycle events while anyone listens
        self.lock = threading.Lock()
        self.ready: collections.deque[Any] = collections.deque()
        self.driving = True  # start() drives it first
        self.finished = False
        self.active: dict[Future[Any], int] = {}  # child futures not yet handled -> index
        self.results: list[Any] = [_MISSING] * len(self.children)
        self.errors: list[tuple[int, BaseException]] = []
        self.next = 0  # index of the next child to submit
        self.remaining = len(self.children)  # children not yet completed
        self.subruns: dict[int, _Run] = {}
        self.timer: TimerHandle | None = None
        self.path: IndexPath
        if link is None:
            self.root, self.path, self.input = self, (), _MISSING
        else:
            parent, index, self.input = link
            self.root, self.path = parent.root, (*parent.path, index)

    def start(self) -> Future[Any]:
        future = self.future
        if not self.children:
            future.set_result([])
            return future
        timeout = self.composite._options.timeout
        if timeout is not None:
            assert self.executor is not None
            self.timer = self.executor.timer.call_later(timeout, self._signal, _TIMEOUT)
        future.add_done_callback(self._on_own_done)
        _schedule(self)
        return future

    # -- any thread ---------------------------------------------------------------

    def _on_own_done(self, future: Future[Any]) -> None:
        if future.cancelled():
            # No executor will dequeue this future, so report the cancellation to
            # wait() and as_completed() here, as an executor would.
            future.set_running_or_notify_cancel()
            self._signal(_CANCEL)

    def _signal(self, item: Any) -> None:
        with self.lock:
            self.ready.append(item)
            if self.driving:
                return
            self.driving = True
        _schedule(self)

    # -- the driving thread only ----------------------------------------------------

    def _drive(self) -> BaseException | None:
        """Handle queued items and submit children until idle; never raises."""
        reraise: BaseException | None = None
        ready, count = self.ready, len(self.children)
        while True:
            # Only the driver pops, so a lock-free look is safe; the lock is for
            # deciding to stop, against _signal's append-then-check.
            if ready:
                item = ready.popleft()
            elif not self.finished and self.next < count and (self.kind == _PARALLEL or not self.active):
                item = _MISSING
            else:
                with self.lock:
                    if ready:
                        continue
                    self.driving = False
                return reraise
            try:
                if item is _MISSING:
                    self._submit_next()
                elif not self.finished:
                    self._handle(item)
            except BaseException as exc:  # a KeyboardInterrupt from an inline submit or a callback, or a bug
                if reraise is None and not isinstance(exc, Exception):
                    reraise = exc
                if not self.finished:
                    try:
                        self._fail(exc)
                    except BaseException as again:  # from a done-callback; the future is set by now
                        reraise = reraise or again

    def _submit_next(self) -> None:
        index = self.next
        self.next = index + 1
        value = self.results[index - 1] if self.kind == _PIPELINE and index else self.input
        command = self.children[index].caused_by(self.composite)
        if isinstance(command, Composite):
            command._link = (self, index, value)
        elif value is not _MISSING:
            command._args = (value, *command._args)
        assert self.executor is not None
        try:
            future = self.executor.submit(command)
        except Exception as exc:  # shut down or broken meanwhile: the composite fails, never hangs
            self._child_failed(index, exc)
            return
        self.active[future] = index
        if future._state is FINISHED:  # e.g. inline: handled by this loop, no callback needed
            self.ready.append(future)
        else:
            future.add_done_callback(self._signal)  # if done meanwhile, _signal only queues it

    def _handle(self, item: Any) -> None:
        if item is _CANCEL:
            self._finish()
        elif item is _TIMEOUT:
            timeout = self.composite._options.timeout
            error = CommandTimeout(
                f"{self.composite!r} exceeded its timeout of {timeout} s; its pending children were cancelled"
            )
            if self.path:
                self._note(error, self.path, self.composite.key)
            self._fail(error)
        elif item._state is not FINISHED:
            # Cancelled by someone else (shutdown(cancel_futures=True)): so is the composite.
            del self.active[item]
            if not self.future.cancel():  # queues _CANCEL, which cancels the others
                self._fail(CancelledError(f"a child of {self.composite!r} was cancelled"))
        else:
            # A done future's fields never change again: read them without its lock.
            index = self.active.pop(item)
            if item._exception is not None:
                self._child_failed(index, item._exception)
                return
            self.results[index] = item._result
            self.remaining -= 1
            if not self.remaining:
                self._complete()

    def _child_failed(self, index: int, error: BaseException) -> None:
        if index not in self.subruns:  # a composite child has noted its own errors
            self._note(error, (*self.path, index), self.children[index].key)
        self.remaining -= 1
        if self.kind != _PARALLEL:
            self._fail(error)
            return
        self.errors.append((index, error))
        if not self.remaining or not self.collect_all:
            self._complete()

    def _complete(self) -> None:
        if self.errors:
            self.errors.sort(key=lambda pair: pair[0])
            errors = [error for _, error in self.errors]
            where = f" at {list(self.path)}" if self.path else ""
            rest = "" if self.collect_all else "; the pending ones were cancelled"
            message = f"{len(errors)} of {len(self.children)} children of Parallel{where} failed{rest}"
            self._fail(BaseExceptionGroup(message, errors))
            return
        self._finish()
        value = self.results[-1] if self.kind == _PIPELINE else self.results
        with contextlib.suppress(InvalidStateError):  # cancelled meanwhile
            self.future.set_result(value)

    def _fail(self, error: BaseException) -> None:
        self._finish()  # pending children are cancelled before anyone sees the failure
        if self.root is self:
            error.partial_results = _partial_results(self)  # type: ignore[attr-defined]
        with contextlib.suppress(InvalidStateError):  # cancelled meanwhile
            self.future.set_exception(error)

    def _finish(self) -> None:
        self.finished = True
        self.executor = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        active, self.active = self.active, {}
        for future in active:
            future.cancel()  # its callback only queues an item, ignored now

    def _note(self, error: BaseException, path: IndexPath, key: str) -> None:
        error.add_note(f"in child {list(path)} {key!r} of {type(self.root.composite).__name__}")


def _partial_results(root: _Run) -> dict[IndexPath, Any]:
    found: dict[IndexPath, Any] = {}
    stack = [root]
    while stack:
        run = stack.pop()
        for index, value in enumerate(run.results):
            if value is not _MISSING:
                found[(*run.path, index)] = value
        stack.extend(run.subruns.values())
    return dict(sorted(found.items()))
