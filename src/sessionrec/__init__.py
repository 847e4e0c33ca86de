"""sessionrec: session-based product recommendation from raw click logs to served models."""

__version__ = "0.1.0"
