"""deploy: the upgrade, its live diff, preflight, the deploy lock, rollback and the evidence of a failure."""
