"""Kestra version upgrades: the plan (path, values change, flows), migration Jobs, the run."""
