"""Run the app under uvicorn: one worker in this process, or N worker processes.

Several workers only make sense with a shared state store (Redis): with the in-process store
each worker would keep its own sessions and a session's clicks would land in different ones.
Workers get their settings through ``SESSIONREC_*`` variables and aggregate their metrics in
a ``PROMETHEUS_MULTIPROC_DIR`` created for the run. With an experiment the config, every
variant's model and the event log are checked before serving, so a config that does not
validate is refused at start-up with the reason.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable

from sessionrec.errors import ConfigError
from sessionrec.serving.settings import ServeSettings


def run_server(settings: ServeSettings, host: str = "127.0.0.1", port: int = 8000,
               workers: int = 1, log_level: str = "warning",
               on_loaded: Callable[[], None] | None = None) -> None:
    """Load the model (to fail early with a clear error), then serve until interrupted.

    ``on_loaded`` is called once the model (or experiment) loaded, before listening.
    """
    import uvicorn

    from sessionrec.serving.app import create_app
    from sessionrec.serving.bundle import load_bundle

    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    if workers > 1 and settings.store == "memory":
        raise ConfigError("--workers > 1 needs a shared state store (--store redis://HOST:PORT): "
                          "with the in-process store every worker keeps its own sessions")
    if settings.experiment:
        app = _experiment_app(settings)
    else:
        app = create_app(settings, bundle=load_bundle(
            settings.model, settings.vocab or None, settings.fallback or None,
            settings.blocked(), settings.embeddings or None))
    if on_loaded is not None:
        on_loaded()
    if workers == 1:
        uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)
        return
    del app  # each worker loads its own copy
    metrics_dir = tempfile.mkdtemp(prefix="sessionrec-metrics-")
    os.environ.update(settings.to_env())
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    if (settings.admin_token and not settings.admin_token_file
            and os.environ.get("SESSIONREC_ADMIN_TOKEN") != settings.admin_token):
        # given in code, not in the environment: hand it to the workers in a private file
        token_file = os.path.join(metrics_dir, "admin-token")
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(settings.admin_token)
        os.environ["SESSIONREC_ADMIN_TOKEN_FILE"] = token_file
    try:
        uvicorn.run("sessionrec.serving.app:create_app_from_env", factory=True, host=host,
                    port=port, workers=workers, log_level=log_level, access_log=False)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _experiment_app(settings: ServeSettings):
    """The app of an experiment, its config, models and event log checked first."""
    from sessionrec.experiments.config import load_experiment
    from sessionrec.experiments.eventlog import open_event_log
    from sessionrec.serving.app import create_app
    from sessionrec.serving.variants import load_variant_bundles

    config = load_experiment(settings.experiment)
    bundles = load_variant_bundles(config, settings)
    open_event_log(settings.event_log_url(settings.experiment)).close()  # reachable, writable
    return create_app(settings, experiment=config, variants=bundles)
