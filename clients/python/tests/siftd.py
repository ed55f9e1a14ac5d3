"""Runs the real siftd binary for the Python client's tests.

The binary: $SIFTD_PATH, else the Bazel runfiles path
($TEST_SRCDIR/$TEST_WORKSPACE/broker/siftd), else bazel-bin/broker/siftd of
the repository. Each Siftd listens on a free 127.0.0.1 port the test picks,
logs to a file, and is stopped by its pid (SIGTERM, then SIGKILL). Every
wait is bounded. Not thread-safe: use from the test's main thread.
"""

import os
import signal
import socket
import subprocess
import tempfile
import time
from typing import List, Optional

_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO = os.path.abspath(os.path.join(_HERE, "..", "..", ".."))


def siftd_path() -> str:
    env = os.environ.get("SIFTD_PATH")
    if env:
        return env
    srcdir = os.environ.get("TEST_SRCDIR")
    if srcdir:
        ws = os.environ.get("TEST_WORKSPACE", "sift")
        path = os.path.join(srcdir, ws, "broker", "siftd")
        if os.path.exists(path):
            return path
    return os.path.join(_REPO, "bazel-bin", "broker", "siftd")


def free_port() -> int:
    """A TCP port on 127.0.0.1 the kernel just handed out (another process
    may take it before siftd binds it; rare, and then start() fails)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, interval: float = 0.01) -> bool:
    """Polls predicate() until it is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


class Siftd:
    """One siftd child process on tcp://127.0.0.1:<port>."""

    def __init__(self, *flags: str, port: Optional[int] = None) -> None:
        self.flags: List[str] = list(flags)
        self.port = port or free_port()
        self.proc: Optional[subprocess.Popen] = None
        tmp = os.environ.get("TEST_TMPDIR") or tempfile.gettempdir()
        self.log_path = os.path.join(tmp, f"siftd-{self.port}.log")

    @property
    def endpoint(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> "Siftd":
        path = siftd_path()
        if not os.path.exists(path):
            raise RuntimeError(
                f"siftd not found at {path}: build it (bazel build "
                "//broker:siftd) or set SIFTD_PATH")
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [path, f"--endpoints={self.endpoint}"] + self.flags,
            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"siftd exited with {self.proc.returncode}"
                                   f": {self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2):
                    return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"siftd not ready within {timeout} s: "
                           f"{self.log_tail()}")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM by pid, SIGKILL if it is still there after timeout."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, signal.SIGCONT)  # in case pause() stopped it
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)

    def pause(self) -> None:
        """SIGSTOP by pid: the broker stops answering, its connections
        stay open (kill() or stop() ends it; SIGKILL works on a stopped
        process, and stop() sends SIGCONT first)."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGSTOP)

    def kill(self) -> None:
        """SIGKILL by pid: a crash, no goodbyes."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, n: int = 2000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def __enter__(self) -> "Siftd":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
