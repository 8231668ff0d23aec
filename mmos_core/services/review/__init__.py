"""Fragment review: filtered, paginated search (Postgres full text and pgvector), verdicts, edits,
tags, relationships and the source text around a fragment (`pages/review.py`).

Every function takes `session=` and never commits; the page action owns the transaction. Verdicts
belong to their author (see `mmos_core.services.auth.can_change_verdict`): a reviewer cannot change
another reviewer's verdict, an admin can. Callers use the package as one namespace
(`from mmos_core.services import review as rv`; `rv.search_fragments(...)`).

Modules:
  fragments  `FragmentRow`, Markdown escaping and highlighting, look-ups, `ReviewError`
  search     filters and paging, full-text and semantic search, "more like this", filter choices
  verdicts   verify / reject / reset, owner rules
  edits      content / category / insight edits and their history
  tags       tags and relationships between fragments
  context    the source text around a fragment
"""

from mmos_core.services.review.context import SourceContext, source_context
from mmos_core.services.review.edits import EditEntry, edit_fragment, edit_history
from mmos_core.services.review.fragments import (
    STATUSES,
    FragmentRow,
    ReviewError,
    fragment_id_by_code,
    get_fragment_row,
    highlight_to_markdown,
    markdown_escape,
)
from mmos_core.services.review.search import (
    PAGE_SIZES,
    FilterChoices,
    FragmentFilter,
    FragmentPage,
    SimilarFragment,
    filter_choices,
    more_like_this,
    search_fragments,
    semantic_search,
)
from mmos_core.services.review.tags import RelationView, add_tag, all_tags, relate, relationships_of, remove_tag, tags_of
from mmos_core.services.review.verdicts import reject, reset_verdict, second_opinion, verify

__all__ = [
    "PAGE_SIZES",
    "STATUSES",
    "EditEntry",
    "FilterChoices",
    "FragmentFilter",
    "FragmentPage",
    "FragmentRow",
    "RelationView",
    "ReviewError",
    "SimilarFragment",
    "SourceContext",
    "add_tag",
    "all_tags",
    "edit_fragment",
    "edit_history",
    "filter_choices",
    "fragment_id_by_code",
    "get_fragment_row",
    "highlight_to_markdown",
    "markdown_escape",
    "more_like_this",
    "reject",
    "relate",
    "relationships_of",
    "remove_tag",
    "reset_verdict",
    "second_opinion",
    "search_fragments",
    "semantic_search",
    "source_context",
    "tags_of",
    "verify",
]
