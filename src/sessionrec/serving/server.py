"""Run the app under uvicorn: one worker in this process, or N worker processes.

Several workers only make sense with a shared state store (Redis): with the in-process store
each worker would keep its own sessions and a session's clicks would land in different ones.
Workers get their settings through ``SESSIONREC_*`` variables and aggregate their metrics in
a ``PROMETHEUS_MULTIPROC_DIR`` created for the run.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from sessionrec.errors import ConfigError
from sessionrec.serving.settings import ServeSettings


def run_server(settings: ServeSettings, host: str = "127.0.0.1", port: int = 8000,
               workers: int = 1, log_level: str = "warning") -> None:
    """Load the model (to fail early with a clear error), then serve until interrupted."""
    import uvicorn

    from sessionrec.serving.app import create_app
    from sessionrec.serving.bundle import load_bundle

    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    if workers > 1 and settings.store == "memory":
        raise ConfigError("--workers > 1 needs a shared state store (--store redis://HOST:PORT): "
                          "with the in-process store every worker keeps its own sessions")
    bundle = load_bundle(settings.model, settings.vocab or None, settings.fallback or None,
                         settings.blocked())
    if workers == 1:
        uvicorn.run(create_app(settings, bundle=bundle), host=host, port=port,
                    log_level=log_level, access_log=False)
        return
    del bundle  # each worker loads its own copy
    metrics_dir = tempfile.mkdtemp(prefix="sessionrec-metrics-")
    os.environ.update(settings.to_env())
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        uvicorn.run("sessionrec.serving.app:create_app_from_env", factory=True, host=host,
                    port=port, workers=workers, log_level=log_level, access_log=False)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
