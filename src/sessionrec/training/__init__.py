"""Losses, optimisers and the epoch loop shared by the neural session models."""
