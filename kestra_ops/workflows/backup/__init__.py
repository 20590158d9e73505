"""backup: backup sets (run, list, verify, restore, drill, prune)."""
