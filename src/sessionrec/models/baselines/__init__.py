"""Classical session baselines: popularity, item-to-item rules and session-kNN.

Importing this package registers every baseline under its ``name``:

=========  ==========================================================
``pop``    most popular training items
``spop``   items of the session first, then popularity
``cooc``   "often bought together" co-occurrence with the last item
``ar``     association rules (pairs in a session, any order)
``sr``     sequential rules (j after i within ``steps``, 1/d weights)
``markov`` first-order transition counts from the last item
``iknn``   item-kNN (cosine over sessions) from the last item
``sknn``   session-kNN, binary cosine
``vsknn``  session-kNN with position-weighted (and idf) prefixes
``stan``   session-kNN with position, recency and neighbour decays
=========  ==========================================================
"""

from sessionrec.models.baselines.ar import AssociationRules
from sessionrec.models.baselines.cooc import Cooccurrence
from sessionrec.models.baselines.iknn import ItemKNN
from sessionrec.models.baselines.markov import MarkovChain
from sessionrec.models.baselines.pop import Popularity
from sessionrec.models.baselines.sknn import SessionKNN
from sessionrec.models.baselines.spop import SessionPopularity
from sessionrec.models.baselines.sr import SequentialRules
from sessionrec.models.baselines.stan import STAN
from sessionrec.models.baselines.vsknn import VectorSessionKNN

__all__ = [
    "STAN",
    "AssociationRules",
    "Cooccurrence",
    "ItemKNN",
    "MarkovChain",
    "Popularity",
    "SequentialRules",
    "SessionKNN",
    "SessionPopularity",
    "VectorSessionKNN",
]
