"""The retraining loop: prepare the latest window, train, shadow-evaluate against the live
model on the same fresh held-out days, promote over the admin channel, roll back
(``sessionrec retrain`` / ``sessionrec rollback``)."""
