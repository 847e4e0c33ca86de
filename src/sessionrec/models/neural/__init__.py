"""Neural session models: encoders on the shared output layer and trainer (see base.py)."""
