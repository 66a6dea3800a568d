"""One trainer per workdir: `<workdir>/train.lock`, held for the whole run.

Two trainers on one workdir would interleave checkpoints and summaries, and each resume would
pick up the other's steps. The lock is an exclusive `flock` on the file, which the kernel drops
when its holder dies however it dies (kill -9, OOM), so a killed run leaves no lock that
blocks; the file's text (pid, host) only names the holder in the refusal. A lock file whose
flock is free is stale whatever it says, and is taken over.
"""

from __future__ import annotations

import fcntl
import os
import socket

from rl2vla_jax.validation import ConfigError

LOCK_FILE = "train.lock"


class WorkdirBusy(ConfigError):
    """Another live process holds the workdir's lock."""


class WorkdirLock:
    """`with WorkdirLock(workdir):` or `.acquire()` / `.release()`."""

    def __init__(self, workdir: str):
        self.path = os.path.join(os.path.abspath(workdir), LOCK_FILE)
        self._fd: int | None = None

    def acquire(self) -> WorkdirLock:
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = (
                    os.read(fd, 4096).decode(errors="replace").strip()
                    or "a process that has not written its pid yet"
                )
                os.close(fd)
                raise WorkdirBusy(
                    f"workdir {os.path.dirname(self.path)} is in use by {holder} (lock {self.path}); "
                    "wait for that run to end, stop it, or pass another --workdir"
                ) from None
            # The previous holder unlinks the file on release: if it did so between our open and
            # our flock, we hold a lock on a file nobody else can see; open the new one instead.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on host {socket.gethostname()}\n".encode())
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        # Unlink while still holding the flock, so no one can take the lock on this inode.
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> WorkdirLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
