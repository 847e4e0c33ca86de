"""The open-loop load generator of the serving benchmarks (``benchmarks/_loadgen.py``)."""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def loadgen():
    spec = importlib.util.spec_from_file_location("_loadgen", BENCHMARKS / "_loadgen.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["_loadgen"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def unfrozen():
    """Nothing frozen at the start (a served app's lifespan elsewhere in the run freezes)."""
    gc.unfreeze()


@pytest.mark.parametrize("enabled", [True, False])
def test_paused_gc_restores_the_collector(loadgen, unfrozen, enabled):
    (gc.enable if enabled else gc.disable)()
    try:
        with loadgen.paused_gc():
            assert not gc.isenabled()
            assert gc.get_freeze_count() > 0  # what existed before is out of its reach
        assert gc.isenabled() is enabled
        assert gc.get_freeze_count() == 0
    finally:
        gc.enable()


def test_paused_gc_keeps_the_callers_frozen_objects_frozen(loadgen):
    gc.freeze()
    try:
        with loadgen.paused_gc():
            pass
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_paused_gc_restores_after_an_error(loadgen, unfrozen):
    with pytest.raises(RuntimeError), loadgen.paused_gc():
        raise RuntimeError("boom")
    assert gc.isenabled() and gc.get_freeze_count() == 0


ANSWER = b'{"ok":true}'


class _Http(asyncio.Protocol):
    """Answers every request (head + Content-Length body) with 200, or 500 for body b"bad"."""

    def connection_made(self, transport):
        self.transport, self.buf = transport, b""

    def data_received(self, data):
        self.buf += data
        while (end := self.buf.find(b"\r\n\r\n")) >= 0:
            head = self.buf[:end].lower()
            length = int(head.split(b"content-length:")[1].split(b"\r\n")[0])
            if len(self.buf) < end + 4 + length:
                return
            body, self.buf = self.buf[end + 4:end + 4 + length], self.buf[end + 4 + length:]
            status = b"500 Error" if body == b"bad" else b"200 OK"
            self.transport.write(b"HTTP/1.1 " + status + b"\r\ncontent-length: %d\r\n"
                                 b"x-seen: yes\r\n\r\n" % len(ANSWER) + ANSWER)


def test_open_loop_counts_every_request_and_error(loadgen):
    async def run():
        server = await asyncio.get_running_loop().create_server(_Http, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            return await loadgen.open_loop_requests(
                "127.0.0.1", port, "/x", lambda i: b"bad" if i % 10 == 0 else b"{}", 200.0,
                0.5, connections=4, count_header="x-seen: yes")
        finally:
            server.close()

    row = asyncio.run(run())
    assert row["requests"] == 100
    assert row["errors"] == 10  # the 500s
    assert row["with_header"] == 100
    assert 0 < row["p50"] <= row["p99"] <= row["p999"] <= row["max"]
    assert gc.isenabled()
