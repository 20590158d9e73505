"""flows: flows as code (validate, plan, apply, export, promote, backfill)."""
