"""Rendered MP4s on disk, in `state_dir/renders/`, bounded in bytes, least recently used evicted first.

    cache = RenderCache(state_dir / "renders", max_bytes=512 * 1024 * 1024)
    cache.get("3f0c…e1.mp4")                 # the file's path (and marks it used), or None
    claim = cache.claim("3f0c…e1.mp4")       # None: another process is rendering it
    cache.evict(keep={"3f0c…e1.mp4"})

A file's name is its render key (`fal_emulator.render.job`), so a file is never rewritten, several
processes sharing a state dir share the cache, and a file survives restarts. A file's modification time
is when it was rendered (its `Last-Modified`); "recently used" is its access time, set on every hit and
every download. `evict` deletes the least recently used files until the total fits, never those named in
`keep` (renders in flight, made and not yet collected by their request, or being downloaded).

A claim is an exclusive `flock` on `{name}.lock`, held while one process renders that file: another process
sharing the state dir sees the claim and waits for the file instead of rendering it too. The kernel drops
the lock of a process that dies, so a lost render is claimed again.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path

from fal_emulator.render.job import is_render_name

STALE_PARTIAL_SECONDS = 3600.0  # a `.part-…` file this old belongs to a render that died with its process
LOCK_SUFFIX = ".lock"


class Claim:
    """The right to render one file, held until `release()` (an open, `flock`ed lock file)."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        """Give the claim up (idempotent). The lock file is removed first, while still locked."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            self.path.unlink()
        os.close(fd)  # closing drops the flock


class RenderCache:
    """MP4 files named by render key in `folder` (created on first use), at most `max_bytes` in all."""

    def __init__(self, folder: Path, max_bytes: int) -> None:
        self.folder = folder
        self.max_bytes = max_bytes

    def path(self, name: str) -> Path:
        """Where the file `name` lives (or will). Raises ValueError for a name that is not a render's."""
        if not is_render_name(name):
            raise ValueError(f"{name!r} is not a rendered file name")
        return self.folder / name

    def prepare(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)

    def get(self, name: str) -> Path | None:
        """The cached file `name`, marked as just used; None when absent (never rendered, or evicted)."""
        if not is_render_name(name):
            return None
        path = self.folder / name
        try:
            os.utime(path, (time.time(), path.stat().st_mtime))  # used now; rendered when it was
        except OSError:
            return None
        return path

    def claim(self, name: str) -> Claim | None:
        """The claim to render `name`, or None while another process (or render) holds it.

        Raises ValueError for a name that is not a render's, OSError when the folder cannot be written.
        """
        lock = self.path(name).with_name(name + LOCK_SUFFIX)
        self.prepare()
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return Claim(lock, fd)

    def evict(self, keep: set[str] | frozenset[str] = frozenset()) -> list[str]:
        """Delete least recently used files until the cache holds at most `max_bytes`; returns their names.

        Files named in `keep` stay whatever their size. Leftovers of renders that died (`.part-…` files
        older than an hour) are deleted too.
        """
        entries: list[tuple[float, str, int]] = []
        now = time.time()
        try:
            listing = list(os.scandir(self.folder))
        except OSError:
            return []
        for entry in listing:
            with contextlib.suppress(OSError):
                stat = entry.stat()
                if ".part-" in entry.name and now - stat.st_mtime > STALE_PARTIAL_SECONDS:
                    os.unlink(entry.path)
                elif is_render_name(entry.name):
                    entries.append((stat.st_atime, entry.name, stat.st_size))
        total = sum(size for _, _, size in entries)
        evicted = []
        for _, name, size in sorted(entries):
            if total <= self.max_bytes:
                break
            if name in keep:
                continue
            with contextlib.suppress(OSError):
                os.unlink(self.folder / name)
                total -= size
                evicted.append(name)
        return evicted
