"""Values files: load with line numbers, merge layers with provenance, validate, render."""
