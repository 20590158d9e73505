"""Kestra version upgrades as data: the catalogue of versions (``catalogue.yaml``), its loader,
the path between two versions, and the checks of values and flows against a target version."""
