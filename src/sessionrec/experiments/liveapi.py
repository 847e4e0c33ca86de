"""The live API on a free loopback port: as a ``sessionrec serve`` process, or in this process.

Both are context managers with a ``url``; they return once ``GET /readyz`` answers 200 and stop
the server gracefully on exit (so the event log is flushed and closed), killing a process that
does not stop in time.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from sessionrec.errors import SessionRecError


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, seconds: float, alive=lambda: True, why=lambda: "") -> None:
    """Poll ``url/readyz`` until it answers 200; raise after ``seconds`` or once not ``alive``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not alive():
            raise SessionRecError(f"the API server stopped before it was ready: {why()}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SessionRecError(f"the API server at {url} was not ready after {seconds:.0f} s")


def experiment_options(experiment: Path, event_log: str,
                       extra: Sequence[str] = ()) -> list[str]:
    """The ``sessionrec serve`` options that serve an experiment with its event log."""
    return ["--experiment", str(experiment), "--event-log", event_log, *extra]


class ServeProcess:
    """``sessionrec serve OPTIONS`` (this interpreter) in a child process on a free port."""

    def __init__(self, options: Sequence[str], *, ready_s: float = 180.0,
                 log_file: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [sys.executable, "-m", "sessionrec.cli", "serve", *options,
                        "--host", "127.0.0.1", "--port", str(self.port)]
        self.ready_s = ready_s
        self.log_file = log_file
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> ServeProcess:
        # Only this run's settings: SESSIONREC_* variables of the caller would leak in.
        env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONREC_")}
        err = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen(self.command, env=env, stdout=err, stderr=err,
                                         start_new_session=True)
        finally:
            if self.log_file:
                err.close()
        try:
            wait_ready(self.url, self.ready_s, alive=lambda: self.proc.poll() is None,
                       why=self._tail)
        except BaseException:
            self.stop()
            raise
        return self

    def _tail(self) -> str:
        if self.log_file and self.log_file.is_file():
            return self.log_file.read_text(errors="replace")[-2000:]
        return f"exit code {self.proc.returncode if self.proc else '?'}"

    def stop(self, seconds: float = 30.0) -> int | None:
        """SIGINT (graceful), then SIGKILL after ``seconds``; the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        os.killpg(self.proc.pid, signal.SIGINT)
        try:
            return self.proc.wait(seconds)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait()

    def __exit__(self, *exc) -> None:
        self.stop()


class InProcessServer:
    """An ASGI app under uvicorn on a thread of this process (tests, benchmarks)."""

    def __init__(self, app, *, ready_s: float = 60.0) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.ready_s = ready_s

    def __enter__(self) -> InProcessServer:
        self.thread.start()
        try:
            wait_ready(self.url, self.ready_s, alive=self.thread.is_alive,
                       why=lambda: "see the log above")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, seconds: float = 30.0) -> None:
        self.server.should_exit = True
        self.thread.join(seconds)

    def __exit__(self, *exc) -> None:
        self.stop()
