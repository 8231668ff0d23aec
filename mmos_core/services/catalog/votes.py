"""Import the PRD vicuna80 human pairwise votes (../shared/data/prd_human_preferences) as the catalog design feedback.

Source: Li et al. 2023, "PRD: Peer Rank and Discussion Improve LLM based Evaluations" (MIT), file
`vicuna80_human_pairwise.jsonl`: one human vote per line, `{model_1, model_2, question_id, question,
score, row_in_source, source_file}`, score 1 = model_1's answer better, 2 = model_2's, 3 = tie.

Mapping (also in docs/model-catalog.md):

- Only votes between the five models whose answers ship with the data (bard, claude, gpt35, gpt4,
  vicuna-13b) are imported; votes involving guanaco-* are counted and skipped.
- Winner → a `like`, loser → a `dislike`. A tie → a 3-star `rating` for both, which the posterior
  rule counts as half a success and half a failure — the same weight a tie gets in the win rate
  (W + T/2) / N printed beside the ranking.
- Category `conversation_turn` (single-turn assistant answers judged by people).
- Model names: gpt4 → `gpt-4`, gpt35 → `gpt-3.5-turbo` (litellm's names; the votes are on the
  2023-05-20 and 2023-03-27 snapshots those aliases then served); bard, claude, vicuna-13b have no
  litellm entry and get catalog rows with status `external`.
- `ai_user_feedback` needs a batch or fragment: each model gets one completed, source-less batch
  `import-prd-vicuna80-<model>` to hang its votes on. No user (the annotators are anonymous).
- Idempotent: each row's `session_id` is `prd-vicuna80:<source file stem>#<row_in_source>`; a
  re-import skips (session_id, model) pairs already stored.

The whole file is parsed and checked before anything is written, so a malformed line refuses the
import with its line number and stores nothing.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mmos_core.analysis.posterior import Posterior, posterior, tally
from mmos_core.core.domain import BatchStatus, CatalogModelStatus
from mmos_core.models import ProcessingBatch, UserFeedback
from mmos_core.models.catalog import AiModel
from mmos_core.services.catalog.recommend import category

VOTES_FILE = "vicuna80_human_pairwise.jsonl"
CATEGORY = "conversation_turn"
SESSION_PREFIX = "prd-vicuna80:"

#: vote-file name → (catalog model_id, provider, version of the answers, litellm has it)
VOTE_MODELS: dict[str, tuple[str, str, str]] = {
    "gpt4": ("gpt-4", "openai", "20230520"),
    "gpt35": ("gpt-3.5-turbo", "openai", "20230327"),
    "claude": ("claude", "anthropic", "20230617"),
    "bard": ("bard", "google", "20230327"),
    "vicuna-13b": ("vicuna-13b", "lmsys", "20230322"),
}


class VoteImportError(ValueError):
    """The votes file is missing or malformed; nothing was imported. The message is safe to show."""


@dataclass(frozen=True)
class Vote:
    """One human vote between two answers to the same question."""

    key: str  # "<source file stem>#<row_in_source>"
    question_id: int
    question: str
    model_1: str
    model_2: str
    score: int  # 1 model_1 better, 2 model_2 better, 3 tie


def votes_path(path: Path) -> Path:
    """The votes file: `path` itself, or `path/vicuna80_human_pairwise.jsonl` for a folder.

    Raises:
        VoteImportError: no such file.
    """
    file = path / VOTES_FILE if path.is_dir() else path
    if not file.is_file():
        raise VoteImportError(f"No votes file at {file} (expected {VOTES_FILE} from prd_human_preferences).")
    return file


def parse_votes(text: str) -> tuple[list[Vote], Counter[str]]:
    """Parse the JSONL votes; returns (votes among the five models, skipped counts by reason).

    Raises:
        VoteImportError: a line that is not JSON, lacks a field, or has a score other than 1, 2, 3
            (the message names the line); no votes at all.
    """
    votes: list[Vote] = []
    skipped: Counter[str] = Counter()
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row: dict[str, Any] = json.loads(line)
            m1, m2, score = str(row["model_1"]), str(row["model_2"]), int(row["score"])
            stem = Path(str(row["source_file"])).stem
            key = f"{stem}#{int(row['row_in_source'])}"
            qid = int(row["question_id"])
            question = str(row.get("question") or "")
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise VoteImportError(f"Line {lineno} is not a vote ({type(exc).__name__}: {exc}); nothing imported.") from exc
        if score not in (1, 2, 3):
            raise VoteImportError(f"Line {lineno}: score {score} is not 1, 2 or 3; nothing imported.")
        if m1 not in VOTE_MODELS or m2 not in VOTE_MODELS:
            skipped["involves a model without answers (guanaco-*)"] += 1
            continue
        votes.append(Vote(key, qid, question, m1, m2, score))
    if not votes and not skipped:
        raise VoteImportError("The file holds no votes.")
    return votes, skipped


def feedback_of(vote: Vote) -> list[tuple[str, str, int | None, str]]:
    """The feedback rows of one vote: (vote model, feedback_type, stars, outcome) for each side."""
    if vote.score == 3:
        return [(vote.model_1, "rating", 3, "tie"), (vote.model_2, "rating", 3, "tie")]
    winner, loser = (vote.model_1, vote.model_2) if vote.score == 1 else (vote.model_2, vote.model_1)
    return [(winner, "like", None, "won"), (loser, "dislike", None, "lost")]


@dataclass(frozen=True)
class ImportReport:
    """What an import stored: votes read, feedback rows added and already present, votes skipped."""

    votes: int
    added: int
    already_present: int
    skipped: dict[str, int]
    external_models: list[str]

    def summary(self) -> str:
        """One line for the CLI."""
        skipped = sum(self.skipped.values())
        return (
            f"{self.votes} votes among the five models: {self.added} feedback rows added, "
            f"{self.already_present} already present; {skipped} votes skipped"
            + (f" ({'; '.join(f'{n} {why}' for why, n in self.skipped.items())})" if skipped else "")
        )


def _ensure_model(session: Session, vote_name: str) -> tuple[str, list[str]]:
    model_id, provider, version = VOTE_MODELS[vote_name]
    created: list[str] = []
    if session.scalar(select(AiModel.id).where(AiModel.model_id == model_id)) is None:
        session.add(
            AiModel(
                model_id=model_id, model_name=model_id, provider=provider, version=version,
                capabilities=["text_generation", "text_chat"], cost_bucket="unknown", status=CatalogModelStatus.external.value,
                is_active=True, description="Known from the PRD vicuna80 human votes; not callable from the workbench.",
                metadata_={"origin": "prd_human_preferences vicuna80", "vote_name": vote_name},
            )
        )
        created.append(model_id)
    return model_id, created


def _import_batch(session: Session, model_id: str, provider: str) -> int:
    code = f"import-prd-vicuna80-{model_id}"[:64]
    batch_id = session.scalar(select(ProcessingBatch.id).where(ProcessingBatch.batch_code == code))
    if batch_id is None:
        batch = ProcessingBatch(
            batch_code=code, model_provider=provider, model_name=model_id, temperature=0,
            processor_name="prd_human_preferences import", prompt_version="prd-vicuna80",
            batch_status=BatchStatus.completed.value, total_sources=0, chunks_total=0, price_snapshot={},
        )
        session.add(batch)
        session.flush()
        batch_id = batch.id
    return batch_id


def import_votes(*, session: Session, path: Path) -> ImportReport:
    """Store the vicuna80 votes as feedback (rules in the module doc). Idempotent. Does not commit.

    Raises:
        VoteImportError: missing or malformed file (nothing stored).
        mmos_core.services.catalog.recommend.CatalogError: the `conversation_turn` category is missing
            (run `mmos catalog sync` first).
    """

    file = votes_path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise VoteImportError(f"{file} is not UTF-8 text; nothing imported.") from exc
    votes, skipped = parse_votes(text)
    category(session=session, task_category=CATEGORY)

    names: dict[str, str] = {}
    batches: dict[str, int] = {}
    external: list[str] = []
    for vote_name in VOTE_MODELS:
        model_id, created = _ensure_model(session, vote_name)
        external += created
        names[vote_name] = model_id
    session.flush()
    for vote_name, model_id in names.items():
        batches[vote_name] = _import_batch(session, model_id, VOTE_MODELS[vote_name][1])
    present = set(
        session.execute(
            select(UserFeedback.session_id, UserFeedback.model_name).where(
                UserFeedback.session_id.startswith(SESSION_PREFIX)
            )
        ).all()
    )
    rows: list[dict[str, Any]] = []
    already = 0
    for vote in votes:
        session_id = f"{SESSION_PREFIX}{vote.key}"[:100]
        for vote_name, kind, stars, outcome in feedback_of(vote):
            model_id = names[vote_name]
            if (session_id, model_id) in present:
                already += 1
                continue
            other = vote.model_2 if vote_name == vote.model_1 else vote.model_1
            rows.append(
                dict(
                    user_id=None, batch_id=batches[vote_name], model_name=model_id, category_key=CATEGORY,
                    feedback_type=kind, quality_rating=stars,
                    reason=f"PRD vicuna80 human vote: {outcome} against {names[other]} (question {vote.question_id})",
                    prompt_summary=vote.question[:200] or None, output_summary=None, session_id=session_id,
                )
            )
    for start in range(0, len(rows), 2000):
        session.execute(UserFeedback.__table__.insert(), rows[start : start + 2000])
    return ImportReport(len(votes), len(rows), already, dict(skipped), external)


@dataclass(frozen=True)
class WinRate:
    """A model's record in the votes: wins, losses, ties, and (W + T/2) / N."""

    model_id: str
    wins: int
    losses: int
    ties: int

    @property
    def n(self) -> int:
        """Votes the model took part in."""
        return self.wins + self.losses + self.ties

    @property
    def win_rate(self) -> float:
        """(W + T/2) / N."""
        return (self.wins + self.ties / 2) / self.n if self.n else 0.0


def win_rates(votes: list[Vote]) -> dict[str, WinRate]:
    """Each model's record in `votes`, keyed by catalog model_id."""
    w: dict[str, Counter[str]] = defaultdict(Counter)
    for vote in votes:
        for vote_name, _, _, outcome in feedback_of(vote):
            w[VOTE_MODELS[vote_name][0]][outcome] += 1
    return {m: WinRate(m, c["won"], c["lost"], c["tie"]) for m, c in w.items()}


def posterior_from_votes(votes: list[Vote]) -> dict[str, Posterior]:
    """The posterior each model would get from these votes alone (prior mean 0.5), by the catalog's rule."""
    rows: dict[str, list[tuple[str, int | None]]] = defaultdict(list)
    for vote in votes:
        for vote_name, kind, stars, _ in feedback_of(vote):
            rows[VOTE_MODELS[vote_name][0]].append((kind, stars))
    return {m: posterior(tally(r)) for m, r in rows.items()}
