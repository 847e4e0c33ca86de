"""Starting (or reusing) the SparkSession of ``prepare --engine spark``, and its errors.

PySpark is an optional extra (``pip install -e ".[spark]"`` plus a Java runtime). Without it,
or when the JVM cannot start, the engine raises :class:`ConfigError` saying what to install —
never a Java stack trace. A failure inside a Spark job becomes :class:`DataError` /
:class:`SessionRecError` with the first line of the Java message.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sessionrec.errors import ConfigError, SessionRecError

log = logging.getLogger(__name__)

INSTALL_HINT = ('install the extra and a Java runtime: pip install -e ".[spark]" and '
                "apt-get install -y default-jre-headless")


@dataclass(frozen=True)
class SparkConfig:
    """Where and how Spark runs (``[spark]`` in the prepare config, ``--master`` on the CLI).

    ``master`` is ``local[*]`` (every core of this machine), ``local[N]`` or a cluster URL
    (``spark://host:7077``, ``yarn``); under ``spark-submit`` the submitted master wins.
    ``shuffle_partitions`` 0 means twice the default parallelism.
    """

    master: str = "local[*]"
    driver_memory: str = "2g"
    shuffle_partitions: int = 0


def spark_available() -> bool:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return False
    return True


def get_session(cfg: SparkConfig) -> Any:
    """The active SparkSession, or a new one configured from ``cfg``."""
    if not spark_available():
        raise ConfigError(f"--engine spark needs PySpark: {INSTALL_HINT}")
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    builder = (SparkSession.builder.appName("sessionrec-prepare")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
               .config("spark.driver.memory", cfg.driver_memory))
    if "PYSPARK_SUBMIT_ARGS" not in os.environ and "SPARK_ENV_LOADED" not in os.environ:
        builder = builder.master(cfg.master)  # spark-submit sets the master itself
    try:
        spark = builder.getOrCreate()
    except Exception as err:  # the JVM did not start: no Java, bad master URL, ...
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"Spark could not start ({first}); {INSTALL_HINT}") from err
    spark.sparkContext.setLogLevel("ERROR")
    parts = cfg.shuffle_partitions or 2 * spark.sparkContext.defaultParallelism
    spark.conf.set("spark.sql.shuffle.partitions", str(parts))
    log.info("spark %s, master %s, %d shuffle partitions", spark.version,
             spark.sparkContext.master, parts)
    return spark


@contextlib.contextmanager
def spark_errors() -> Iterator[None]:
    """Turn Spark / Py4J exceptions raised inside the block into sessionrec errors."""
    try:
        yield
    except SessionRecError:
        raise
    except Exception as err:
        module = type(err).__module__
        if not (module.startswith("pyspark") or module.startswith("py4j")):
            raise
        raise SessionRecError(spark_failure(str(err))) from None


def spark_failure(text: str) -> str:
    """The message for a failed Spark job: its first line, and what to do when the JVM ran
    out of memory (in local mode the driver's heap is all the executors have)."""
    text = text.strip()
    first = text.splitlines()[0] if text else "unknown error"
    message = f"the Spark job failed: {first[:500]}"
    if "OutOfMemoryError" in text:
        message += ("; the JVM ran out of heap: give it more (--set spark.driver_memory=8g; in "
                    "local mode the driver's heap serves every task) or run on a cluster "
                    "(--master URL)")
    return message
