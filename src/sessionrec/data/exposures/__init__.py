"""Exposure data: items *shown* to a user with what the user did (click, like, follow, ...).

Click-session data (:mod:`sessionrec.data.prepare`) keeps only what a user clicked, grouped into
sessions, for next-item prediction over the whole catalogue. An exposure log answers another
question, "how likely is a click on this candidate?", and needs what the session pipeline drops:
the shown-but-not-clicked rows and the per-row behaviour labels. So exposures have their own
canonical frame (:mod:`.schema`), adapters (:mod:`.kuairand`), and a prepare step
(:mod:`.prepare`) that deduplicates, splits each user's time-ordered history 80/20 and encodes
ids; :mod:`.dataset` reads a prepared directory back as arrays.
"""

from sessionrec.data.exposures.schema import LABELS

__all__ = ["LABELS"]
