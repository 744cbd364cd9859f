"""The public names are pinned: adding or removing one is a deliberate change."""

import commandexec as ce

PUBLIC = {
    "Command", "Registry", "registry",
    "Sequential", "Parallel", "Pipeline",
    "Event", "EventBus", "emit",
    "from_config", "Executor", "InlineExecutor", "ThreadExecutor", "ProcessExecutor",
    "AuthenticationError", "BrokenExecutor", "CascadeLimitExceeded", "CommandExecError",
    "CommandTimeout", "ConfigError", "DuplicateCommand", "ExecutorFull", "InvalidCommand",
    "ProtocolError", "RemoteCommandError", "SerializationError", "UnknownCommand", "WorkerLost",
}  # fmt: skip


def test_all_lists_exactly_the_public_names() -> None:
    assert set(ce.__all__) == PUBLIC
    assert len(ce.__all__) == len(PUBLIC)


def test_every_public_name_is_importable_and_documented() -> None:
    for name in ce.__all__:
        obj = getattr(ce, name)
        assert obj.__doc__, f"commandexec.{name} has no docstring"


def test_the_default_registry_is_a_registry_and_executors_use_it() -> None:
    assert isinstance(ce.registry, ce.Registry)
    assert ce.InlineExecutor().registry is ce.registry


def test_every_error_derives_from_the_one_root() -> None:
    objects = [getattr(ce, name) for name in ce.__all__]
    errors = [e for e in objects if isinstance(e, type) and issubclass(e, BaseException)]
    assert len(errors) == 14
    assert all(issubclass(e, ce.CommandExecError) for e in errors)
