"""The web console under ``/ui``: a session playground, model cards and the dashboard of a
running experiment, served by the API's own FastAPI app (no build step, no CDN).

* :mod:`.catalogue` — product search and lookup from the served vocabulary's ``items.parquet``;
* :mod:`.lanes` — every loaded model / variant as a "lane" that answers a playground click;
* :mod:`.modelcard` — a run's config, data manifest, metrics with intervals, training curve;
* :mod:`.dashboard` — the experiment report's numbers (:func:`sessionrec.experiments.report.
  analyse`) plus daily and cumulative KPIs with intervals, aggregated server-side and cached;
* :mod:`.auth` — the admin bearer token (header or a login cookie);
* :mod:`.routes` — the pages (Jinja2 templates) and their JSON endpoints.
"""
