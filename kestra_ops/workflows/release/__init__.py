"""release: one guarded release (lint, backup, deploy, check, rollback, report)."""
