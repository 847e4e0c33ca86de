"""The item vocabulary, re-exported for the serving code: it lives in :mod:`sessionrec.vocab`
because experiments, the console and serving all read saved models' vocabularies."""

from sessionrec.vocab import ITEMS_FILE, USERS_FILE, Vocabulary, read_users

__all__ = ["ITEMS_FILE", "USERS_FILE", "Vocabulary", "read_users"]
