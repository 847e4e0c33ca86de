"""The event archive: every event the API receives, append-only, for retraining (seed 000)."""
