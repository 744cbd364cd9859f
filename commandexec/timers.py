"""Timer: the one place the framework waits for time (timeouts, backoff, heartbeats).

An executor owns one :class:`Timer`, started on first use, so a feature nobody
uses costs no thread. One thread serves every pending call, kept in a heap.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["Timer", "TimerHandle"]

logger = logging.getLogger("commandexec")


class TimerHandle:
    """A scheduled call; :meth:`cancel` stops it from running if it has not yet."""

    __slots__ = ("_args", "_fn", "_timer", "when")

    def __init__(self, timer: Timer, when: float, fn: Callable[..., object], args: tuple[Any, ...]) -> None:
        self._timer: Timer | None = timer
        self.when = when
        self._fn = fn
        self._args = args

    @property
    def cancelled(self) -> bool:
        """True once cancelled or run."""
        return self._timer is None

    def cancel(self) -> None:
        """Drop the call if it has not run yet; harmless afterwards."""
        timer = self._timer
        if timer is not None:
            self._timer = None
            timer._cancelled()


class Timer:
    """A clock (:meth:`now`) and a scheduler (:meth:`call_later`) served by one thread.

    Calls run on the timer thread, one at a time, so they must be quick (set a
    future's exception, submit a retry); an exception from one is logged.
    """

    def __init__(self, name: str = "commandexec-timer") -> None:
        self._name = name
        self._heap: list[tuple[float, int, TimerHandle]] = []
        self._seq = itertools.count()
        self._condition = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None
        self._live = 0
        self._closing = False  # the thread exits once nothing is pending
        self._closed = False  # and no call may be scheduled any more

    @staticmethod
    def now() -> float:
        """Seconds on a monotonic clock."""
        return time.monotonic()

    def call_later(self, delay: float, fn: Callable[..., object], *args: Any) -> TimerHandle:
        """Run ``fn(*args)`` on the timer thread after *delay* seconds.

        Raises:
            RuntimeError: after ``close(wait=True)``.
        """
        when = time.monotonic() + max(0.0, delay)
        with self._condition:
            if self._closed:
                raise RuntimeError("cannot schedule a timer after close()")
            handle = TimerHandle(self, when, fn, args)
            heapq.heappush(self._heap, (when, next(self._seq), handle))
            self._live += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            elif self._heap[0][2] is handle:
                self._condition.notify()
        return handle

    def _cancelled(self) -> None:
        with self._condition:
            self._live -= 1
            # Drop cancelled entries once they are most of the heap, so a stream
            # of long timeouts that finish early does not pile up.
            if len(self._heap) > 64 and self._live < len(self._heap) // 2:
                self._heap = [entry for entry in self._heap if not entry[2].cancelled]
                heapq.heapify(self._heap)
            if self._closing and self._live == 0:
                self._condition.notify()

    def _run(self) -> None:
        heap = self._heap
        while True:
            with self._condition:
                while True:
                    heap = self._heap
                    while heap and heap[0][2].cancelled:
                        heapq.heappop(heap)
                    if self._closing and self._live == 0:
                        return
                    if not heap:
                        self._condition.wait()
                        continue
                    delay = heap[0][0] - time.monotonic()
                    if delay <= 0:
                        break
                    self._condition.wait(delay)
                _, _, handle = heapq.heappop(heap)
                fn, args = handle._fn, handle._args
                handle._timer = None
                self._live -= 1
            try:
                fn(*args)
            except BaseException:
                logger.exception("timer callback %r failed", fn)

    def close(self, wait: bool = True) -> None:
        """Let the thread exit once no call is pending.

        Args:
            wait: Also cancel pending calls, refuse new ones, and wait for the
                thread to exit. Without it, calls can still be scheduled (work
                already accepted may need a timeout) and the thread exits
                whenever it runs out of them.
        """
        with self._condition:
            self._closing = True
            thread = self._thread
            if wait:
                self._closed = True
                for _, _, handle in self._heap:
                    handle._timer = None
                self._heap.clear()
                self._live = 0
            self._condition.notify()
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join()
