"""Experiment tracking: projects, runs, params, metrics, tags, artifacts, search."""
