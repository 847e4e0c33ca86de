"""Online experiments: A/B/n assignment, the feedback event log, KPIs, statistics, reports
and a replay simulator that drives the live API with held-out real sessions."""
