"""Mini-batch construction for recurrent session models."""

from sessionrec.batching.negatives import NegativeSampler
from sessionrec.batching.session_parallel import SessionParallelBatch, session_parallel
from sessionrec.batching.user_parallel import (
    UserParallelBatch,
    UserSchedule,
    user_parallel,
    user_schedule,
)

__all__ = ["NegativeSampler", "SessionParallelBatch", "UserParallelBatch", "UserSchedule",
           "session_parallel", "user_parallel", "user_schedule"]
