"""Seed 002 model catalog: models, task categories, preferences, aggregates, recommendations, ai_logs."""
