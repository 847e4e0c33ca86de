"""Loading the served model of each variant of an experiment.

A variant names a run (or model) directory, served like ``sessionrec serve --model`` serves it,
or a baseline, served from the experiment's cooc run (:mod:`sessionrec.serving.baseline`);
``often-bought-together`` is served from the experiment's ``orders`` run (an ``obt`` model:
products in the same order) when it has one.
The fallback recommender of a model variant is ``--fallback`` if given, else the experiment's
``fallback`` run, else the run's sibling ``../cooc``, else the model's popularity.
"""

from __future__ import annotations

from sessionrec.errors import SessionRecError
from sessionrec.experiments.config import ExperimentConfig, VariantSpec
from sessionrec.serving.baseline import load_baseline_bundle
from sessionrec.serving.bundle import Bundle, load_bundle
from sessionrec.serving.settings import ServeSettings


def load_variant_bundle(config: ExperimentConfig, spec: VariantSpec,
                        settings: ServeSettings, blocked: list | None = None) -> Bundle:
    """The loaded bundle of one variant; errors name the experiment file and the variant.
    An external variant gets control's bundle: it keeps the session's state (the products
    sent to the service) and answers when the service fails."""
    blocked = settings.blocked() if blocked is None else blocked
    if spec.external is not None:
        return load_variant_bundle(config, config.variant(config.control), settings, blocked)
    try:
        if spec.baseline == "cooc" and config.orders is not None:
            return load_baseline_bundle("cooc", config.orders, settings.vocab or None, blocked)
        if spec.baseline:
            if config.fallback is None:
                raise SessionRecError(
                    "a baseline variant is served from a cooc run: set fallback = "
                    "\"runs/cooc\" in [experiment]")
            return load_baseline_bundle(spec.baseline, config.fallback, settings.vocab or None,
                                        blocked)
        if spec.path is None:
            raise SessionRecError("no model directory")
        fallback = settings.fallback or config.fallback
        return load_bundle(spec.path, settings.vocab or None, fallback or None, blocked)
    except SessionRecError as err:
        raise SessionRecError(f"experiment {config.source or config.name}: variant "
                              f"{spec.name!r} (model {spec.model!r}) cannot be served: "
                              f"{err}") from err


def load_variant_bundles(config: ExperimentConfig, settings: ServeSettings) -> dict[str, Bundle]:
    """Variant name -> bundle, in file order (external variants share control's bundle)."""
    blocked = settings.blocked()
    served = {v.name: load_variant_bundle(config, v, settings, blocked)
              for v in config.variants if v.external is None}
    return {v.name: served[config.control if v.external is not None else v.name]
            for v in config.variants}
