"""Progress of long steps: a bar on a terminal, periodic one-line log records otherwise.

The library reports progress through :class:`Progress`; how it is shown is the caller's
choice (:func:`configure`, done by the CLI from ``-q`` and whether stderr is a terminal):

- ``"bar"``: a tqdm bar on stderr that stays on screen when done;
- ``"log"`` (the default): an INFO record on the ``sessionrec.progress`` logger at most every
  ``SESSIONREC_PROGRESS_EVERY_S`` seconds (default 10), never a redraw, so redirected output
  stays readable;
- ``"off"``: nothing.

In every mode but ``"off"`` a finished step logs one summary record: count, seconds and
throughput, e.g. ``evaluate gru4rec: 14,715 predictions in 3.2 s (4,598 predictions/s)``.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Literal, TypeVar

log = logging.getLogger("sessionrec.progress")

Mode = Literal["bar", "log", "off"]
MODES: tuple[Mode, ...] = ("bar", "log", "off")
EVERY_ENV = "SESSIONREC_PROGRESS_EVERY_S"
_mode: Mode = "log"
T = TypeVar("T")


def configure(mode: Mode) -> None:
    """Choose how every later :class:`Progress` is shown."""
    global _mode
    if mode not in MODES:
        raise ValueError(f"progress mode {mode!r}; valid: {', '.join(MODES)}")
    _mode = mode


def mode() -> Mode:
    return _mode


def auto_mode(quiet: bool, stream=None) -> Mode:
    """``off`` when quiet, ``bar`` on a terminal, else ``log``."""
    if quiet:
        return "off"
    stream = sys.stderr if stream is None else stream
    return "bar" if hasattr(stream, "isatty") and stream.isatty() else "log"


def log_interval_s() -> float:
    raw = os.environ.get(EVERY_ENV, "")
    try:
        return max(float(raw), 0.0) if raw else 10.0
    except ValueError:
        return 10.0


def rate_text(count: float, seconds: float, unit: str) -> str:
    """``"1,234 events in 2.0 s (617 events/s)"``."""
    rate = f" ({count / seconds:,.0f} {unit}/s)" if seconds > 0 else ""
    return f"{count:,.0f} {unit} in {seconds:.1f} s{rate}"


class Progress:
    """Counts a step's work and shows it in the configured mode; a context manager.

    ``total`` may be None (unknown). ``update(n)`` adds ``n`` units; ``close()`` (or leaving
    the ``with`` block without an error) logs the summary and returns it.
    """

    def __init__(self, total: int | None, desc: str, unit: str = "it") -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.count = 0
        self.mode = _mode
        self.start = self._last = time.perf_counter()
        self.every_s = log_interval_s()
        self.postfix = ""
        self._bar = None
        if self.mode == "bar":
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=f" {unit}", leave=True,
                             file=sys.stderr, dynamic_ncols=True, mininterval=0.5)

    def update(self, n: int = 1) -> None:
        self.count += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.mode == "log":
            now = time.perf_counter()
            if now - self._last >= self.every_s:
                self._last = now
                log.info("%s", self.status(now))

    @property
    def n(self) -> int:
        """Units counted so far (tqdm's name, for code written against a tqdm bar)."""
        return self.count

    def set_postfix(self, refresh: bool = False, **values: object) -> None:
        """Extra figures shown after the count, e.g. ``loss=0.5312``: on the bar, and in the
        periodic log records and the summary."""
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())
        if self._bar is not None:
            self._bar.set_postfix_str(self.postfix, refresh=refresh)

    def step(self, name: str) -> None:
        """One named step done (for a few long steps): always shown, in every mode but off."""
        self.count += 1
        if self._bar is not None:
            self._bar.set_postfix_str(name, refresh=False)
            self._bar.update(1)
        elif self.mode == "log":
            self._last = time.perf_counter()
            of = f"/{self.total}" if self.total else ""
            log.info("%s: %s done (%d%s), %.1f s", self.desc, name, self.count, of,
                     self._last - self.start)

    def status(self, now: float | None = None) -> str:
        """``"evaluate: 4,000/14,715 predictions (27%), 12.1 s, 331 predictions/s, ~32 s left"``."""
        elapsed = (time.perf_counter() if now is None else now) - self.start
        rate = self.count / elapsed if elapsed > 0 else 0.0
        done = f"{self.count:,}"
        left = ""
        if self.total:
            done += f"/{self.total:,} {self.unit} ({100 * self.count / self.total:.0f}%)"
            if rate > 0:
                left = f", ~{(self.total - self.count) / rate:.0f} s left"
        else:
            done += f" {self.unit}"
        extra = f", {self.postfix}" if self.postfix else ""
        return f"{self.desc}: {done}, {elapsed:.1f} s, {rate:,.0f} {self.unit}/s{left}{extra}"

    def close(self) -> str:
        seconds = time.perf_counter() - self.start
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self.unit == "steps":  # a few named steps: a rate of them says nothing
            summary = f"{self.desc}: {self.count} steps in {seconds:.1f} s"
        else:
            summary = f"{self.desc}: {rate_text(self.count, seconds, self.unit)}"
        if self.postfix:
            summary += f", {self.postfix}"
        if self.mode != "off":
            log.info("%s", summary)
        self.mode = "off"  # closing twice logs once
        return summary

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        elif self._bar is not None:
            self._bar.close()


def track(items: Iterable[T], desc: str, unit: str = "it", total: int | None = None
          ) -> Iterator[T]:
    """Yield ``items`` while counting them in a :class:`Progress`."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with Progress(total, desc, unit) as bar:
        for item in items:
            yield item
            bar.update(1)
