"""Quick start: register plain functions by key and run Commands on an executor.

Run: python examples/quickstart.py
"""

from __future__ import annotations

import concurrent.futures
import hashlib

import commandexec as ce


def checksum(text: str, algorithm: str = "sha256") -> str:
    """Return the hex digest of *text*."""
    return hashlib.new(algorithm, text.encode()).hexdigest()


def word_count(text: str) -> int:
    return len(text.split())


registry = ce.Registry()
registry.register("checksum", checksum)  # any callable; no decorator or base class needed
registry.register("words", word_count)

texts = ["the quick brown fox", "jumps over", "the lazy dog"]

# The same code runs on any executor: swap ThreadExecutor for InlineExecutor (or,
# later, a process or remote executor) and nothing else changes.
for executor_class in (ce.InlineExecutor, ce.ThreadExecutor):
    with executor_class(registry=registry) as executor:
        futures = [executor.submit(ce.Command("checksum", t, algorithm="md5")) for t in texts]
        digests = [f.result(timeout=10) for f in futures]
        counts = list(executor.map("words", texts))
        try:
            executor.submit(ce.Command("chcksum", "typo")).result(timeout=10)
        except ce.UnknownCommand as error:
            hint = str(error)
    print(f"{executor_class.__name__}: words={counts} md5[0]={digests[0][:8]} ({hint})")

# Futures are plain concurrent.futures.Future objects.
with ce.ThreadExecutor(max_workers=2, registry=registry) as executor:
    futures = [executor.submit("words", t) for t in texts]
    total = sum(f.result() for f in concurrent.futures.as_completed(futures, timeout=10))
print(f"total words: {total}")
