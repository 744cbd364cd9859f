"""``commandexec demo``: hash and compress files on an executor and report.

It creates a few files in a temporary directory, registers two plain functions
under keys, submits one command per file and key, and prints what came back.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import TextIO

from .command import Command
from .executors import executor_class
from .registry import Registry

__all__ = ["compress_file", "hash_file", "run_demo"]

_WORDS = ["command", "executor", "registry", "future", "thread", "worker", "queue", "event", "observer", "pipeline"]


def hash_file(path: str) -> str:
    """Return the SHA-256 hex digest of the file at *path*."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def compress_file(path: str) -> dict[str, int]:
    """Gzip *path* to ``path + ".gz"`` and return both sizes in bytes."""
    with open(path, "rb") as src, gzip.open(path + ".gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    return {"original": os.path.getsize(path), "compressed": os.path.getsize(path + ".gz")}


def _make_files(directory: Path, count: int, seed: int) -> list[Path]:
    rng = random.Random(seed)
    paths = []
    for i in range(count):
        words = rng.choices(_WORDS, k=rng.randint(2_000, 60_000))
        path = directory / f"file-{i:02d}.txt"
        path.write_text(" ".join(words))
        paths.append(path)
    return paths


def run_demo(kind: str = "threads", files: int = 12, out: TextIO | None = None) -> int:
    """Run the demo on an executor of *kind*, print a report to *out*, return 0."""
    import sys

    out = out or sys.stdout
    registry = Registry()
    registry.register("hash", hash_file)
    registry.register("compress", compress_file)
    cls = executor_class(kind)
    with tempfile.TemporaryDirectory(prefix="commandexec-demo-") as tmp:
        paths = _make_files(Path(tmp), files, seed=7)
        start = time.perf_counter()
        with cls(registry=registry) as executor:
            hashes = [executor.submit(Command("hash", str(p))) for p in paths]
            sizes = [executor.submit(Command("compress", str(p))) for p in paths]
            rows = [
                (path.name, digest.result(timeout=60), size.result(timeout=60))
                for path, digest, size in zip(paths, hashes, sizes, strict=True)
            ]
        elapsed = time.perf_counter() - start
    print(f"commandexec demo: {2 * files} commands on the {kind!r} executor", file=out)
    print(f"{'file':<12} {'sha256':<16} {'bytes':>9} {'gzip':>8} {'ratio':>6}", file=out)
    total_in = total_out = 0
    for name, digest, size in rows:
        total_in += size["original"]
        total_out += size["compressed"]
        ratio = size["compressed"] / size["original"]
        print(f"{name:<12} {digest[:16]} {size['original']:>9} {size['compressed']:>8} {ratio:>6.1%}", file=out)
    print(
        f"{len(rows)} files, {total_in} bytes -> {total_out} bytes gzipped "
        f"({total_out / total_in:.1%}), in {elapsed:.2f} s",
        file=out,
    )
    return 0
