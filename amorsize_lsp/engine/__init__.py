"""Decisions: system profile, cost model, sampler."""
