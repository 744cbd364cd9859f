"""An event-driven pipeline: find files, checksum and compress them in parallel,
update an index whenever a file is compressed, then report.

The executor comes from the environment, so the same program runs in the caller,
on threads or on worker processes without a code change:

    COMMANDEXEC_EXECUTOR=processes python examples/event_pipeline.py

Only plain functions are registered; the wiring is commands, a composite and
one observer that answers an event with a follow-up command.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import random
import shutil
import sys
import tempfile
from pathlib import Path

import commandexec as ce
from commandexec.executors import executor_class


def find_files(directory: str, suffix: str) -> list[str]:
    """Return the files under *directory* ending in *suffix*, sorted."""
    return sorted(str(p) for p in Path(directory).rglob(f"*{suffix}"))


def checksum(path: str) -> str:
    """Return the SHA-256 of the file at *path*."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def compress(path: str) -> int:
    """Gzip *path* next to itself; announce it with a ``file.compressed`` event."""
    target = path + ".gz"
    with open(path, "rb") as src, open(target, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as dst:
        shutil.copyfileobj(src, dst)
    size = os.path.getsize(target)
    ce.emit("file.compressed", path=path, original=os.path.getsize(path), compressed=size)
    return size


def update_index(index: str, path: str, original: int, compressed: int) -> None:
    """Append one line to the index (O_APPEND keeps concurrent writers' lines whole)."""
    line = f"{Path(path).name}\t{original}\t{compressed}\n".encode()
    fd = os.open(index, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def report(index: str) -> str:
    """Summarise the index: files, bytes before and after."""
    rows = sorted(line.split("\t") for line in Path(index).read_text().splitlines())
    total_in = sum(int(r[1]) for r in rows)
    total_out = sum(int(r[2]) for r in rows)
    lines = [f"{name:<12} {int(a):>8} -> {int(b):>7}" for name, a, b in rows]
    lines.append(f"{len(rows)} files indexed, {total_in} -> {total_out} bytes ({total_out / total_in:.1%})")
    return "\n".join(lines)


registry = ce.Registry()
registry.register("find", find_files)
registry.register("checksum", checksum)
registry.register("compress", compress)
registry.register("index.update", update_index)
registry.register("report", report)


def main() -> int:
    kind = os.environ.get("COMMANDEXEC_EXECUTOR", "threads")
    with tempfile.TemporaryDirectory(prefix="commandexec-pipeline-") as tmp:
        rng = random.Random(42)
        for i in range(8):
            words = rng.choices(["alpha", "beta", "gamma", "delta", "epsilon"], k=rng.randint(500, 5000))
            (Path(tmp) / f"doc-{i}.txt").write_text(" ".join(words))
        index = str(Path(tmp) / "index.tsv")

        def index_compressed(event: ce.Event) -> ce.Command:
            # The observer answers the event with a follow-up command.
            p = event.payload
            return ce.Command("index.update", index, p["path"], p["original"], p["compressed"])

        with executor_class(kind)(registry=registry) as executor:
            executor.events.subscribe("file.compressed", index_compressed)
            files = executor.submit(ce.Command("find", tmp, ".txt")).result(timeout=60)
            # Per file, checksum then compress; all files in parallel.
            work = ce.Parallel(*(ce.Sequential(ce.Command("checksum", f), ce.Command("compress", f)) for f in files))
            results = executor.submit(work).result(timeout=60)
            executor.drain(timeout=60)  # the index updates the observer asked for
            summary = executor.submit(ce.Command("report", index)).result(timeout=60)
    print(f"checksums: {', '.join(digest[:8] for digest, _ in results)}")
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
