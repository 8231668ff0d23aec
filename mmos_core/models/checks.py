"""Per-fragment checks (verbatim, attribution, support baseline), LLM judge verdicts and each reviewer's
own verdict with its reason (migration 0007; rules in docs/quality.md)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from mmos_core.models.base import Base, now

_REASONS = "('misquote','wrong_speaker','unsupported_insight','wrong_category','trivial')"


class FragmentCheck(Base):
    """The automatic checks of one fragment, recomputed without an LLM when the person's speakers change.

    `verbatim`: exact | near | not_found for direct quotes, 'n/a' otherwise; `attribution`: person,
    other:NAME, editorial, mixed, unknown (or 'n/a'); `support_baseline`: cosine 0-1 of the insight with
    its quote and context (the embedding baseline beside the judge).
    """

    __tablename__ = "fragment_checks"

    fragment_id: Mapped[int] = mapped_column(ForeignKey("fragments.id", ondelete="CASCADE"), primary_key=True)
    rule_version: Mapped[str] = mapped_column(String(16))
    verbatim: Mapped[str] = mapped_column(String(12))
    verbatim_similarity: Mapped[float | None] = mapped_column(Numeric(5, 4))
    span_start: Mapped[int | None] = mapped_column(Integer)
    span_end: Mapped[int | None] = mapped_column(Integer)
    diff: Mapped[list[Any] | None] = mapped_column(JSONB)
    attribution: Mapped[str] = mapped_column(String(140))
    support_baseline: Mapped[float | None] = mapped_column(Numeric(5, 4))
    checked_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=now())

    __table_args__ = (
        CheckConstraint("verbatim IN ('exact','near','not_found','n/a')", name="ck_fragment_checks_verbatim"),
    )


class JudgeVerdict(Base):
    """One LLM judge's verdict on whether a fragment's quote supports its insight (and its category)."""

    __tablename__ = "judge_verdicts"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    fragment_id: Mapped[int] = mapped_column(ForeignKey("fragments.id", ondelete="CASCADE"))
    judge_model: Mapped[str] = mapped_column(String(200))
    rubric_version: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))  # ok | malformed | provider_error
    support: Mapped[str | None] = mapped_column(String(8))  # yes | partly | no
    support_score: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    judge_category: Mapped[str | None] = mapped_column(String(32))
    category_agrees: Mapped[bool | None] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(Text)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[Decimal] = mapped_column(Numeric(12, 8), default=Decimal(0))
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    raw_answer: Mapped[str | None] = mapped_column(Text)
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=now())

    __table_args__ = (
        CheckConstraint("status IN ('ok','malformed','provider_error')", name="ck_judge_verdicts_status"),
        CheckConstraint("support IN ('yes','partly','no')", name="ck_judge_verdicts_support"),
        UniqueConstraint("fragment_id", "judge_model", "rubric_version", name="uq_judge_verdicts_fragment_judge"),
    )


class ReviewVerdict(Base):
    """One reviewer's own verdict on a fragment (several reviewers may judge the same fragment: the
    agreement report compares them); `reason` says why a rejection was made."""

    __tablename__ = "review_verdicts"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    fragment_id: Mapped[int] = mapped_column(ForeignKey("fragments.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    verdict: Mapped[str] = mapped_column(String(10))  # verified | rejected
    reason: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=now())
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=now())

    __table_args__ = (
        CheckConstraint("verdict IN ('verified','rejected')", name="ck_review_verdicts_verdict"),
        CheckConstraint(f"reason IN {_REASONS}", name="ck_review_verdicts_reason"),
        UniqueConstraint("fragment_id", "user_id", name="uq_review_verdicts_fragment_user"),
    )
