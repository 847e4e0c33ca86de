"""Headless Chromium for the console's browser tests (Debian's ``chromium`` driven by
Selenium through ``chromedriver``; nothing is downloaded) and an app served by uvicorn on
127.0.0.1 in a thread of the test process.

Without Chromium, chromedriver or the ``selenium`` package the browser tests skip, unless
``SESSIONREC_REQUIRE_BROWSER=1`` (set by ``.ci/run``, which installs them): then they fail.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time

import pytest

CHROMIUM = os.environ.get("SESSIONREC_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("SESSIONREC_CHROMEDRIVER", "/usr/bin/chromedriver")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage")


def unavailable(reason: str) -> None:
    if os.environ.get("SESSIONREC_REQUIRE_BROWSER") == "1":
        pytest.fail(f"SESSIONREC_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


def chromium(width: int = 1280, height: int = 800):
    """A headless Chromium WebDriver with a fresh profile (quit it when done)."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError as err:
        unavailable(f"the selenium package is missing ({err}); pip install -e '.[ui-test]'")
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (os.path.isfile(path) or shutil.which(path)):
            unavailable(f"{path} is missing: apt-get install chromium chromium-driver")
    options = Options()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={tempfile.mkdtemp(prefix='sessionrec-chromium-')}",
                 f"--window-size={width},{height}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerThread:
    """``app`` under uvicorn on 127.0.0.1 in a daemon thread; a context manager."""

    def __init__(self, app) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning", access_log=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 120
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the console's server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def wait_for(driver, script: str, timeout: float = 60.0, *args):
    """Poll a JavaScript expression (``return ...``) until it is truthy; returns its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(script, *args)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {script}")
        time.sleep(0.05)
