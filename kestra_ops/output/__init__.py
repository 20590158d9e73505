"""Renderers: one result model, many formats (text, json, sarif, junit, github)."""
