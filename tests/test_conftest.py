"""The suite's own guards must catch what they claim to: hangs and leaks."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A throwaway test directory that uses this suite's conftest."""
    shutil.copy(ROOT / "tests" / "conftest.py", pytester.path / "conftest.py")
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return pytester


@pytest.mark.time_limit(60)
def test_a_hung_test_fails_at_its_time_limit_and_the_suite_goes_on(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        test_inner="""
        import threading, pytest

        @pytest.mark.time_limit(1)
        def test_hangs():
            threading.Event().wait()

        def test_after():
            pass
        """
    )
    result = inner.runpytest_subprocess("-p", "no:cacheprovider", timeout=50)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*exceeded its 1 s time limit*"])


@pytest.mark.time_limit(60)
def test_leaked_threads_children_fds_and_temp_files_fail_the_test(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        test_inner="""
        import subprocess, sys, tempfile, threading

        stop = threading.Event()
        keep = []

        def test_thread():
            threading.Thread(target=stop.wait, name="leaky-thread").start()

        def test_child():
            keep.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]))

        def test_fd():
            keep.append(open(__file__))

        def test_temp_file():
            keep.append(tempfile.mkstemp(prefix="leaky-"))

        def test_cleanup():
            stop.set()
            for item in keep:
                if isinstance(item, subprocess.Popen):
                    item.kill(); item.wait()
                elif isinstance(item, tuple):
                    import os; os.close(item[0]); os.unlink(item[1])
                else:
                    item.close()
        """
    )
    result = inner.runpytest_subprocess("-p", "no:cacheprovider", timeout=50)
    result.stdout.fnmatch_lines(
        [
            "*leaked resources*leaky-thread*",
            "*leaked resources*child processes*",
            "*leaked resources*file descriptors*",
            "*leaked resources*temp files*leaky-*",
        ],
        consecutive=False,
    )
