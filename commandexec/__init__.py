"""commandexec: register plain callables by key, run Commands on interchangeable executors.

>>> import commandexec as ce
>>> registry = ce.Registry()
>>> registry.register("add", lambda a, b: a + b)
>>> with ce.ThreadExecutor(max_workers=2, registry=registry) as executor:
...     executor.submit(ce.Command("add", 1, 2)).result(timeout=5)
3
"""

from .command import Command
from .composite import Parallel, Pipeline, Sequential
from .config import from_config
from .errors import (
    AuthenticationError,
    BrokenExecutor,
    CascadeLimitExceeded,
    CommandExecError,
    CommandTimeout,
    ConfigError,
    DuplicateCommand,
    ExecutorFull,
    InvalidCommand,
    ProtocolError,
    RemoteCommandError,
    SerializationError,
    UnknownCommand,
    WorkerLost,
)
from .events import Event, EventBus
from .executors.base import Executor
from .executors.inline import InlineExecutor
from .executors.processes import ProcessExecutor
from .executors.threads import ThreadExecutor
from .registry import Registry, registry
from .runtime import emit

__version__ = "0.1.0"

__all__ = [
    # commands and where their keys resolve
    "Command",
    "Registry",
    "registry",
    # composites
    "Sequential",
    "Parallel",
    "Pipeline",
    # events and observers
    "Event",
    "EventBus",
    "emit",
    # executors
    "from_config",
    "Executor",
    "InlineExecutor",
    "ThreadExecutor",
    "ProcessExecutor",
    # errors
    "AuthenticationError",
    "BrokenExecutor",
    "CascadeLimitExceeded",
    "CommandExecError",
    "CommandTimeout",
    "ConfigError",
    "DuplicateCommand",
    "ExecutorFull",
    "InvalidCommand",
    "ProtocolError",
    "RemoteCommandError",
    "SerializationError",
    "UnknownCommand",
    "WorkerLost",
]
