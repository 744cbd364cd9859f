"""The promise: one program, and configuration alone decides where its commands run.

The code below never names an executor. ``configured_app.toml`` (next to this
file) says "threads"; the environment can say otherwise without an edit:

    python examples/configured_app.py                                 # the file: threads
    COMMANDEXEC_EXECUTOR=processes python examples/configured_app.py  # one option changed
    COMMANDEXEC_EXECUTOR=inline python examples/configured_app.py
    COMMANDEXEC_CONFIG=routed.toml python examples/configured_app.py  # another file

A routed configuration (see docs/configuration.md) can send ``words.*`` to
worker processes, ``digest`` to threads and the index updates inline: every
child of the composite and every follow-up goes where its key is routed. The
output is the same every time; which executor ran is printed to stderr.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

import commandexec as ce

DOCUMENTS = {
    "fox.txt": "the quick brown fox jumps over the lazy dog the fox",
    "sea.txt": "the sea the sea the restless sea and the gulls over it",
    "code.txt": "a command names a key and the key names a function",
    "rain.txt": "rain on the roof rain on the road rain again",
}


def tokenize(text: str) -> list[str]:
    """Split *text* into lower-case words."""
    return text.lower().split()


def count(words: list[str], name: str) -> list[tuple[str, int]]:
    """The three most frequent words (ties by word); announce how many distinct ones there are."""
    counts = Counter(words)
    ce.emit("words.counted", name=name, distinct=len(counts))
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:3]


def digest(text: str) -> str:
    """A short SHA-256 of *text*."""
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def index_add(index: str, line: str) -> None:
    """Append *line* to the index file (O_APPEND keeps concurrent writers' lines whole)."""
    fd = os.open(index, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{line}\n".encode())
    finally:
        os.close(fd)


registry = ce.Registry()
registry.register("words.tokenize", tokenize)
registry.register("words.count", count)
registry.register("digest", digest)
registry.register("index.add", index_add)


def main() -> int:
    config = Path(__file__).with_name("configured_app.toml")
    with tempfile.TemporaryDirectory(prefix="commandexec-app-") as tmp:
        index = str(Path(tmp) / "index.txt")

        def on_counted(event: ce.Event) -> ce.Command:
            # Answer the event with a follow-up command; it runs where "index.add" is routed.
            return ce.Command("index.add", index, f"{event.payload['name']}: {event.payload['distinct']} distinct")

        with ce.from_config(config, registry=registry) as executor:
            print(f"executor: {executor!r}", file=sys.stderr)
            executor.events.subscribe("words.counted", on_counted)
            # Per document, in parallel: its top words (a pipeline) and its digest.
            work = ce.Parallel(
                *(
                    ce.Parallel(
                        ce.Pipeline(ce.Command("words.tokenize", text), ce.Command("words.count", name=name)),
                        ce.Command("digest", text),
                    )
                    for name, text in DOCUMENTS.items()
                )
            )
            results = executor.submit(work).result(timeout=60)
            lengths = list(executor.map(len, DOCUMENTS.values(), timeout=60))
            executor.drain(timeout=60)  # the index updates the observer asked for
        lines = sorted(Path(index).read_text().splitlines())
    for name, (top, digest_), length in zip(DOCUMENTS, results, lengths, strict=True):
        words = ", ".join(f"{word}={n}" for word, n in top)
        print(f"{name:<9} {length:>3} chars  sha256 {digest_}  top: {words}")
    print("index:", "; ".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
