"""Seed 002 tables (migration 0005): ai_models, ai_task_categories, ai_model_task_mappings, ai_user_preferences,
ai_model_performance_aggregates, ai_logs. (`ai_user_feedback` lives in mmos_core.models, migration 0002.)"""

from __future__ import annotations

from mmos_core.models import Base  # noqa: F401  (tables register on the shared metadata)
