"""Scoring with lm-evaluation-harness: the `xling` model, its registration, prefix-shared scoring, benchmark facts."""
