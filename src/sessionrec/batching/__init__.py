"""Mini-batch construction for recurrent session models."""

from sessionrec.batching.negatives import NegativeSampler
from sessionrec.batching.session_parallel import SessionParallelBatch, session_parallel

__all__ = ["NegativeSampler", "SessionParallelBatch", "session_parallel"]
