"""The catalog design's queries: "best model for task", "user's preferred model", plus the fallback chain.

Where the seed orders by `is_recommended, priority_rank, suitability_score`, we order by the feedback
posterior's lower credible bound (see `posterior`), then its mean, then the seed's two columns as
tie-breaks, then the cheaper cost bucket; the seed's static score becomes the prior (`base_suitability`). Candidates for a task
category are the models mapped to it plus every catalog model with feedback on it, restricted to
models having the category's required capabilities. Feedback joins the catalog by model name
(`ai_user_feedback.model_name = ai_models.model_id`).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace

from sqlalchemy import case, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from mmos_core.analysis.posterior import FeedbackTally, posterior, user_preference_score
from mmos_core.core.domain import CatalogModelStatus
from mmos_core.models import UserFeedback
from mmos_core.models.catalog import AiModel, AiModelTaskMapping, AiTaskCategory, AiUserPreference


class CatalogError(LookupError):
    """Unknown task category or model; the message is safe to show."""



def feedback_tally_columns() -> tuple:
    """The seven `ai_user_feedback` aggregates a `FeedbackTally` is built from, in its field order: likes,
    dislikes, regenerates, skips, star ratings, Σ (stars − 1)/4, Σ stars (see `posterior` for the rule)."""
    stars = UserFeedback.quality_rating
    is_rating = (UserFeedback.feedback_type == "rating") & stars.is_not(None)
    return (
        func.count().filter(UserFeedback.feedback_type == "like"),
        func.count().filter(UserFeedback.feedback_type == "dislike"),
        func.count().filter(UserFeedback.feedback_type == "regenerate"),
        func.count().filter(UserFeedback.feedback_type == "skip"),
        func.count().filter(is_rating),
        func.coalesce(func.sum(case((is_rating, (stars - 1) / 4.0), else_=0.0)), 0.0),
        func.coalesce(func.sum(case((is_rating, stars), else_=0)), 0),
    )


def feedback_tally(values) -> FeedbackTally:
    """A `FeedbackTally` from the seven values of `feedback_tally_columns`."""
    likes, dislikes, regenerates, skips, ratings, success, stars_sum = values
    return FeedbackTally(int(likes), int(dislikes), int(regenerates), int(skips), int(ratings), float(success), int(stars_sum))

@dataclass(frozen=True)
class Recommendation:
    """One model's standing on one task category.

    `mean`, `low`, `high`: posterior mean and 90 % credible interval of "answers are good" (0-1);
    ranking is by `low`. Counts are the feedback behind it. `pinned`: the user's own choice.
    """

    model_id: str
    model_name: str
    provider: str
    cost_bucket: str
    status: str
    is_local: bool
    is_recommended: bool
    priority_rank: int
    base_suitability: float
    likes: int
    dislikes: int
    regenerates: int
    ratings: int
    mean_stars: float | None
    mean: float
    low: float
    high: float
    pinned: bool = False

    @property
    def feedback_n(self) -> int:
        """Feedback rows behind the posterior (skips excluded)."""
        return self.likes + self.dislikes + self.regenerates + self.ratings


def category(*, session: Session, task_category: str) -> AiTaskCategory:
    """The task category row.

    Raises:
        CatalogError: no such category (run `mmos catalog sync`).
    """
    row = session.scalar(select(AiTaskCategory).where(AiTaskCategory.category_key == task_category))
    if row is None:
        raise CatalogError(f"Unknown task category {task_category!r} (is the catalog synced? `mmos catalog sync`).")
    return row


def feedback_tallies(
    *, session: Session, task_category: str, user_id: int | None = None
) -> dict[str, FeedbackTally]:
    """Per model name, the tally of its feedback on the category (only `user_id`'s when given)."""
    q = select(UserFeedback.model_name, *feedback_tally_columns()).where(UserFeedback.category_key == task_category).group_by(UserFeedback.model_name)
    if user_id is not None:
        q = q.where(UserFeedback.user_id == user_id)
    return {name: feedback_tally(values) for name, *values in session.execute(q)}


def _recommendation(model: AiModel, mapping: AiModelTaskMapping | None, t: FeedbackTally) -> Recommendation:
    base = float(mapping.base_suitability) if mapping is not None else None
    post = posterior(t, base)
    return Recommendation(
        model_id=model.model_id,
        model_name=model.model_name,
        provider=model.provider,
        cost_bucket=model.cost_bucket,
        status=model.status,
        is_local=model.is_local,
        is_recommended=bool(mapping.is_recommended) if mapping is not None else False,
        priority_rank=mapping.priority_rank if mapping is not None else 0,
        base_suitability=base if base is not None else 0.5,
        likes=t.likes,
        dislikes=t.dislikes,
        regenerates=t.regenerates,
        ratings=t.ratings,
        mean_stars=t.mean_stars,
        mean=post.mean,
        low=post.low,
        high=post.high,
    )


_BUCKET_ORDER = {"free": 0, "low": 1, "medium": 2, "high": 3, "unknown": 4}


def _rank_key(r: Recommendation) -> tuple:
    # Equal evidence: the seed's recommended flag and rank, then the cheaper model.
    return (-r.low, -r.mean, not r.is_recommended, -r.priority_rank, _BUCKET_ORDER.get(r.cost_bucket, 5), r.model_id)


def rank_models(
    *, session: Session, task_category: str, include_inactive: bool = False
) -> list[Recommendation]:
    """Every candidate model for the category, best first (see the module doc for the rule).

    Raises:
        CatalogError: unknown category.
    """
    cat = category(session=session, task_category=task_category)
    tallies = feedback_tallies(session=session, task_category=task_category)
    q = (
        select(AiModel, AiModelTaskMapping)
        .outerjoin(
            AiModelTaskMapping,
            (AiModelTaskMapping.model_id == AiModel.id) & (AiModelTaskMapping.category_key == task_category),
        )
        .where(or_(AiModelTaskMapping.id.is_not(None), AiModel.model_id.in_(list(tallies))))
    )
    if cat.required_capabilities:
        q = q.where(AiModel.capabilities.contains(cat.required_capabilities))
    if not include_inactive:
        q = q.where(AiModel.is_active.is_(True))
    recs = [_recommendation(m, mp, tallies.get(m.model_id, FeedbackTally())) for m, mp in session.execute(q)]
    return sorted(recs, key=_rank_key)


def best_models_for_task(
    *,
    session: Session,
    task_category: str,
    limit: int = 5,
    user_id: int | None = None,
    include_inactive: bool = False,
) -> list[Recommendation]:
    """The catalog design "Get Best Model for Task": the top `limit` models for the category, best first.

    With `user_id`, the model that user pinned for the category (if any) comes first, marked `pinned`,
    whatever its rank. Deprecated or deactivated models are left out unless `include_inactive`.

    Raises:
        CatalogError: unknown category.
    """
    ranked = rank_models(session=session, task_category=task_category, include_inactive=include_inactive)
    if user_id is not None:
        pinned = session.scalar(
            select(AiModel.model_id)
            .join(AiUserPreference, AiUserPreference.model_id == AiModel.id)
            .where(
                AiUserPreference.user_id == user_id,
                AiUserPreference.category_key == task_category,
                AiUserPreference.is_pinned.is_(True),
            )
        )
        if pinned is not None:
            mine = [replace(r, pinned=True) for r in ranked if r.model_id == pinned]
            if not mine:  # pinned but not a candidate (e.g. no mapping, no feedback yet)
                model = session.scalar(select(AiModel).where(AiModel.model_id == pinned))
                assert model is not None
                mine = [replace(_recommendation(model, None, FeedbackTally()), pinned=True)]
            ranked = mine + [r for r in ranked if r.model_id != pinned]
    return ranked[:limit]


def fallback_chain(
    *,
    session: Session,
    task_category: str,
    failed_model: str,
    limit: int = 3,
    available: Collection[str] | None = None,
) -> list[Recommendation]:
    """The next models to try after `failed_model` failed, best first: active, runnable (not
    'external'), in `available` when given (e.g. `llm.catalog.available_models()` names).

    Calls made with them are logged with `selected_by='fallback'`.

    Raises:
        CatalogError: unknown category.
    """
    chain = [
        r
        for r in rank_models(session=session, task_category=task_category)
        if r.model_id != failed_model
        and r.status == CatalogModelStatus.active.value
        and (available is None or r.model_id in available)
    ]
    return chain[:limit]


@dataclass(frozen=True)
class PreferredModel:
    """A user's preferred model on a category. `source`: 'pinned' (their choice) or 'feedback'
    (highest `preference_score` from their own feedback). `score` is the preference score (0-1)."""

    model_id: str
    model_name: str
    source: str
    score: float | None
    likes: int
    dislikes: int
    regenerates: int
    ratings: int


def user_preferred_model(*, session: Session, user_id: int, task_category: str) -> PreferredModel | None:
    """The catalog design "Get User's Preferred Model for Task": the pinned model, else the active model with the
    highest preference score from the user's own feedback (`posterior.user_preference_score`), else None.

    Raises:
        CatalogError: unknown category.
    """
    category(session=session, task_category=task_category)
    mine = feedback_tallies(session=session, task_category=task_category, user_id=user_id)
    pinned = session.execute(
        select(AiModel, AiUserPreference)
        .join(AiUserPreference, AiUserPreference.model_id == AiModel.id)
        .where(
            AiUserPreference.user_id == user_id,
            AiUserPreference.category_key == task_category,
            AiUserPreference.is_pinned.is_(True),
        )
    ).first()
    if pinned is not None:
        model, pref = pinned
        t = mine.get(model.model_id, FeedbackTally())
        return PreferredModel(
            model.model_id, model.model_name, "pinned",
            float(pref.preference_score) if pref.preference_score is not None else None,
            t.likes, t.dislikes, t.regenerates, t.ratings,
        )
    if not mine:
        return None
    overall = {r.model_id: r for r in rank_models(session=session, task_category=task_category)}
    best: PreferredModel | None = None
    for name, t in mine.items():
        if name not in overall or t.n == 0:
            continue
        score = user_preference_score(t, overall[name].mean)
        if best is None or score > (best.score or 0):
            best = PreferredModel(name, overall[name].model_name, "feedback", score,
                                  t.likes, t.dislikes, t.regenerates, t.ratings)
    return best


def set_user_preference(*, session: Session, user_id: int, task_category: str, model_id: str) -> None:
    """Pin `model_id` as the user's model for the category (replacing an earlier pin). Does not commit.

    Raises:
        CatalogError: unknown category or model.
    """
    category(session=session, task_category=task_category)
    model_pk = session.scalar(select(AiModel.id).where(AiModel.model_id == model_id))
    if model_pk is None:
        raise CatalogError(f"No model {model_id!r} in the catalog.")
    clear_user_preference(session=session, user_id=user_id, task_category=task_category)
    stmt = insert(AiUserPreference).values(
        user_id=user_id, model_id=model_pk, category_key=task_category, is_pinned=True
    )
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["user_id", "model_id", "category_key"],
            set_={"is_pinned": True, "updated_at": func.now()},
        )
    )


def clear_user_preference(*, session: Session, user_id: int, task_category: str) -> int:
    """Unpin the user's model for the category. Returns how many pins were cleared (0 or 1). Does not commit."""
    result = session.execute(
        update(AiUserPreference)
        .where(
            AiUserPreference.user_id == user_id,
            AiUserPreference.category_key == task_category,
            AiUserPreference.is_pinned.is_(True),
        )
        .values(is_pinned=False, updated_at=func.now())
    )
    session.flush()
    return int(result.rowcount or 0)
