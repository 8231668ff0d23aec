"""Typed SQLAlchemy 2.0 models, one module per domain; importing this package registers every table.

The schema changes only through Alembic (`migrations/versions/`). Column names follow the design
documents' SQL (docs/ARCHITECTURE.md) so their queries run as written.
"""

from mmos_core.models.base import EMBEDDING_DIM, Base
from mmos_core.models.budgets import Budget, BudgetReservation
from mmos_core.models.catalog import (
    AiLog,
    AiModel,
    AiModelPerformanceAggregate,
    AiModelTaskMapping,
    AiTaskCategory,
    AiUserPreference,
)
from mmos_core.models.checks import FragmentCheck, JudgeVerdict, ReviewVerdict
from mmos_core.models.conversations import (
    Contradiction,
    Conversation,
    ConversationLoop,
    ConversationQuality,
    Message,
    MessageCitation,
    MessageEmbedding,
)
from mmos_core.models.extraction import ExtractionCall, ProcessingBatch, ProcessingQueue, SourceProcessing
from mmos_core.models.fragments import Fragment, FragmentEdit, FragmentRelationship, FragmentTag, Tag, UserFeedback
from mmos_core.models.monitoring import (
    SACRED_POSITIONS,
    AsiInference,
    BeamTensor,
    ContextMetric,
    OnnxModel,
    SacredIntervention,
    TrainingSample,
)
from mmos_core.models.quality import ModelPerformance, OptimizationRun
from mmos_core.models.sources import Source, SourceChunk
from mmos_core.models.tokens import ApiToken
from mmos_core.models.users import User
from mmos_core.models.web_sessions import WebSession

__all__ = [
    "FragmentCheck",
    "JudgeVerdict",
    "ReviewVerdict",
    "AiLog",
    "ApiToken",
    "AiModel",
    "AiModelPerformanceAggregate",
    "AiModelTaskMapping",
    "AiTaskCategory",
    "AiUserPreference",
    "AsiInference",
    "Base",
    "BeamTensor",
    "Budget",
    "BudgetReservation",
    "ContextMetric",
    "Contradiction",
    "Conversation",
    "ConversationLoop",
    "ConversationQuality",
    "EMBEDDING_DIM",
    "ExtractionCall",
    "Fragment",
    "FragmentEdit",
    "FragmentRelationship",
    "FragmentTag",
    "Message",
    "MessageCitation",
    "MessageEmbedding",
    "ModelPerformance",
    "OnnxModel",
    "OptimizationRun",
    "ProcessingBatch",
    "ProcessingQueue",
    "SACRED_POSITIONS",
    "SacredIntervention",
    "Source",
    "SourceChunk",
    "SourceProcessing",
    "Tag",
    "TrainingSample",
    "User",
    "UserFeedback",
    "WebSession",
]
