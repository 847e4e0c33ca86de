"""Data pipeline: raw logs -> canonical events -> sessions -> filtered, split, encoded data.

Nothing in this package imports torch: every step is a Polars LazyFrame -> LazyFrame function.
"""
