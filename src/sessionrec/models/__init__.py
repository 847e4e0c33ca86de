"""Session recommenders behind one contract (:class:`SessionRecommender`)."""

from sessionrec.models.base import SessionRecommender, get_model_class, register_model

__all__ = ["SessionRecommender", "get_model_class", "register_model"]
