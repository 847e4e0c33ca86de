"""``sessionrec prepare --engine spark``: the prepare steps as Spark DataFrame operations.

The semantics of every step are those of the Polars engine (docs/prepare-spec.md); the shared
tests in tests/data/test_engines.py run both engines on the same inputs and compare outputs.
"""
