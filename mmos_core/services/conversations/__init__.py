"""Conversations: store, analyse, search and review multi-agent conversations (docs/conversations.md).

Plain functions `f(*, session, ...)` that never commit; callers own the transaction. The detectors
themselves are pure (`mmos_core.analysis.detectors`); this package feeds them from PostgreSQL and
persists what they find. Callers use the package as one namespace
(`from mmos_core.services import conversations as svc`; `svc.analyze_message(...)`).

Modules:
  store       import / create conversations and debates, append messages, status, delete, read back
  analysis    `analyze_message`: embed, candidates (nearest earlier ∪ recent), detectors, persist findings
  health      health point per analysed message, its persistence, the health time series
  citations   checking citations against sources and fragments; citations per message
  alerts      contradiction and loop alerts: list, acknowledge, resolve
  search      semantic message search and similar messages (HNSW)
  embeddings  `EmbeddingModel`, storing message vectors, the HNSW `ef_search` setting
  jobs        `enqueue_analysis` / `enqueue_debate` (the job functions live in `workers/conversations.py`)
"""

from mmos_core.models.conversations import Message  # workers/conversations.py reads `svc.Message`
from mmos_core.services.conversations.alerts import (
    ContradictionAlert,
    LoopAlert,
    acknowledge_contradiction,
    acknowledge_loop,
    contradiction_alerts,
    loop_alerts,
    resolve_contradiction,
    resolve_loop,
)
from mmos_core.services.conversations.analysis import AnalysisOutcome, analyze_message, pending_message_ids
from mmos_core.services.conversations.analysis import _nearest_earlier as _nearest_earlier  # called by tests
from mmos_core.services.conversations.citations import citation_status, citations_by_message
from mmos_core.services.conversations.embeddings import EmbeddingModel, message_contents, store_embeddings
from mmos_core.services.conversations.health import health_series
from mmos_core.services.conversations.jobs import enqueue_analysis, enqueue_debate
from mmos_core.services.conversations.search import MessageHit, search_by_vector, search_messages, similar_messages
from mmos_core.services.conversations.store import (
    ConversationNotFound,
    ConversationSummary,
    DebateAgent,
    add_message,
    create_conversation,
    create_debate,
    delete_conversation,
    failure_labels,
    get_conversation,
    import_conversations,
    list_conversations,
    list_messages,
    message_rows,
    set_status,
)

__all__ = [
    "AnalysisOutcome",
    "ContradictionAlert",
    "ConversationNotFound",
    "ConversationSummary",
    "DebateAgent",
    "EmbeddingModel",
    "LoopAlert",
    "Message",
    "MessageHit",
    "acknowledge_contradiction",
    "acknowledge_loop",
    "add_message",
    "analyze_message",
    "citation_status",
    "citations_by_message",
    "contradiction_alerts",
    "create_conversation",
    "create_debate",
    "delete_conversation",
    "enqueue_analysis",
    "enqueue_debate",
    "failure_labels",
    "get_conversation",
    "health_series",
    "import_conversations",
    "list_conversations",
    "list_messages",
    "loop_alerts",
    "message_contents",
    "message_rows",
    "pending_message_ids",
    "resolve_contradiction",
    "resolve_loop",
    "search_by_vector",
    "search_messages",
    "set_status",
    "similar_messages",
    "store_embeddings",
]
