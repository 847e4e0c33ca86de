"""Run a page's shell blocks, in order, in a fresh copy of the repository without ../shared.

Each block runs with ``bash -e -o pipefail`` in the copy's root (so one block's outputs are the
next block's inputs, as for a reader going down the page), with this interpreter's ``bin``
folder first on ``PATH`` (``sessionrec``, ``python``). A failure names the page, the block and
the line of the command that failed, with the end of its output.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.docs_blocks import Block

OUTPUT_TAIL = 4000
READY_TIMEOUT_S = 300.0  # a loaded CI runner can take a minute to import torch + FastAPI
# Environment that would make an example behave differently from a new user's shell.
CLEARED_ENV = ("SESSIONREC_EXPERIMENT", "SESSIONREC_EVENT_LOG", "SESSIONREC_ADMIN_TOKEN",
               "VIRTUAL_ENV", "PYTHONPATH")


class BlockFailed(AssertionError):
    """A shell block of a documentation page did not run."""


def fresh_clone(repo: Path, dest: Path) -> Path:
    """Copy what a clone would hold (tracked and unignored files, as edited now) into dest."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=repo, check=True, capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = repo / rel
        if src.is_file():  # a deleted-but-tracked file is listed too
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    return dest


def block_env(block: Block) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED_ENV}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(block.env)
    return env


def _script(block: Block) -> str:
    # The ERR trap reports the failing command's line inside the block; -E passes it to
    # functions and subshells.
    return ("set -eE -o pipefail\n"
            "trap 'echo \"readme-test: line $((LINENO - 3)) failed: $BASH_COMMAND\" >&2' ERR\n"
            "\n" + block.text)


def _failure(block: Block, what: str, output: str) -> BlockFailed:
    lines = [ln for ln in output.splitlines() if ln.startswith("readme-test: line ")]
    where = block.where
    if lines:
        offset = int(lines[-1].split()[2])
        where = f"{block.page}:{block.line + offset} (block starting at line {block.line})"
    first = block.text.strip().splitlines()[0] if block.text.strip() else ""
    return BlockFailed(f"{where}: {what}\n  block: {first}\n---- output (tail) ----\n"
                       f"{output[-OUTPUT_TAIL:]}")


def run_block(block: Block, cwd: Path) -> str:
    """Run one foreground block; its combined output, or BlockFailed."""
    try:
        proc = subprocess.run(["bash", "-c", _script(block)], cwd=cwd, env=block_env(block),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=block.timeout_s, start_new_session=True)
    except subprocess.TimeoutExpired as err:
        out = err.stdout.decode() if isinstance(err.stdout, bytes) else (err.stdout or "")
        raise _failure(block, f"still running after {block.timeout_s:.0f} s (timeout)",
                       out) from None
    if proc.returncode != 0:
        raise _failure(block, f"exited with status {proc.returncode}", proc.stdout)
    return proc.stdout


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def start_background(block: Block, cwd: Path, log: Path) -> subprocess.Popen:
    """Start a server block and wait until its port accepts connections."""
    assert block.background_port is not None
    if _port_open(block.background_port):
        raise _failure(block, f"port {block.background_port} is already in use before the "
                              "server started", "")
    with log.open("w") as out:
        proc = subprocess.Popen(["bash", "-c", _script(block)], cwd=cwd, env=block_env(block),
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + min(block.timeout_s, READY_TIMEOUT_S)
    while not _port_open(block.background_port):
        if proc.poll() is not None:
            raise _failure(block, f"server exited with status {proc.returncode} before "
                                  f"listening on port {block.background_port}", log.read_text())
        if time.monotonic() > deadline:
            stop(proc)
            raise _failure(block, f"server not listening on port {block.background_port} "
                                  "in time", log.read_text())
        time.sleep(0.2)
    return proc


def stop(proc: subprocess.Popen) -> None:
    """Stop a background block and everything it started (its process group)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def run_page(blocks: list[Block], cwd: Path) -> list[str]:
    """Run a page's runnable blocks in order; the ``where`` of each block that ran."""
    servers: list[subprocess.Popen] = []
    ran = []
    try:
        for n, block in enumerate(b for b in blocks if b.runnable):
            if block.background_port is not None:
                servers.append(start_background(block, cwd, cwd / f".readme-test-{n}.log"))
            else:
                run_block(block, cwd)
            ran.append(block.where)
    finally:
        for proc in servers:
            stop(proc)
    return ran
