"""Speaker turns at intake, prompts that know who speaks, per-fragment checks, the judge job and the
q-v2 score, on a real press conference (../shared/data/press_conferences) with the provider faked at the
HTTP edge (docs/quality.md)."""

from __future__ import annotations

import json
import os

import pytest
from conftest import shared_dir
from fakes import chat_completion
from rq import SimpleWorker
from sqlalchemy import func, select

from mmos_core.core.config import get_settings
from mmos_core.core.db import session_scope
from mmos_core.core.domain import RQ_QUEUES
from mmos_core.core.redis import get_redis
from mmos_core.jobs.enqueue import get_queue
from mmos_core.models import ExtractionCall, Fragment, FragmentCheck, JudgeVerdict, ModelPerformance, Source
from mmos_core.services.batches import enqueue_batches, queue_extraction
from mmos_core.services.checks import checks_for, set_person_labels
from mmos_core.services.quality import batch_quality, recompute_source
from mmos_core.services.sources import create_source
from mmos_core.services.speakers import speaker_summary
from mmos_core.text.intake import first_words, parse_pasted

pytestmark = pytest.mark.usefixtures("clean_db")

LARGE = "qwen2.5-coder-1.5b-instruct"
CLINTON = "1993-01-29-press-conference-gays-military.txt"
PRESIDENT_SAYS = "The issue is not whether there should be homosexuals in the military."
REPORTER_ASKS = "Will you direct the Navy and the Justice Department not to appeal that decision?"


def _text() -> str:
    path = shared_dir() / "data" / "press_conferences" / CLINTON
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing in CI")
        pytest.skip(f"{path} not found: the shared data folder is absent")
    return path.read_text(encoding="utf-8")


def _source(words: int = 900) -> int:
    parsed = first_words(parse_pasted(_text(), max_bytes=5_000_000), words)
    with session_scope() as session:
        return create_source(
            session=session, parsed=parsed, title="Press conference", person="Bill Clinton",
            source_type="interview", quality="primary", extraction_priority="HIGH",
        ).id


def _drain() -> None:
    SimpleWorker([get_queue(q) for q in RQ_QUEUES], connection=get_redis()).work(burst=True)


def _answer(fragments: list[tuple[str, str]]) -> str:
    return json.dumps({"fragments": [
        {"category": "Values and Beliefs", "fragment_type": "direct_quote", "content": c, "context": "the ban",
         "insight": i, "relevance": 8, "confidence": 0.9}
        for c, i in fragments
    ]})


def test_intake_finds_the_speakers_and_the_person():
    sid = _source()
    with session_scope() as s:
        rows = speaker_summary(session=s, source_id=sid)
        src = s.get(Source, sid)
        assert src.speaker_turns and src.person_labels == ["THE PRESIDENT"]
    labels = {r.label: r for r in rows}
    assert labels["THE PRESIDENT"].is_person and not labels["Q"].is_person
    assert rows[0].label == "THE PRESIDENT" and labels["Q"].words > 50


def test_a_source_without_labels_is_one_speaker_with_a_note(darwin_text):
    parsed = first_words(parse_pasted(darwin_text, max_bytes=5_000_000), 600)
    with session_scope() as s:
        src = create_source(session=s, parsed=parsed, title="Autobiography", person="Charles Darwin",
                            source_type="book", quality="primary", extraction_priority="HIGH")
        assert len(speaker_summary(session=s, source_id=src.id)) == 1
        assert src.turns_note and "one speaker" in src.turns_note.lower()


def test_checks_catch_a_reporters_question_a_misquote_and_count_only_the_persons_verbatim_words(fake_llm, embedder_or_skip):
    sid = _source()
    prompts: list[str] = []

    def respond(req):
        user = req["messages"][1]["content"]
        prompts.append(req["messages"][0]["content"] + "\n" + user)
        if PRESIDENT_SAYS in user:
            return 200, chat_completion(_answer([
                (PRESIDENT_SAYS, "He frames the debate as one of status, not presence."),
                (REPORTER_ASKS, "He will not appeal."),  # the reporter's words, filed as his
                ("I think that " + PRESIDENT_SAYS[0].lower() + PRESIDENT_SAYS[1:], "He is unsure."),  # a misquote
            ]))
        return 200, chat_completion(_answer([("Good afternoon, ladies and gentlemen.", "He is polite.")]))

    fake_llm["respond"] = respond
    with session_scope() as s:
        jobs = queue_extraction(session=s, source_id=sid, model_names=[LARGE])
    enqueue_batches(jobs)
    _drain()

    # the prompt said who speaks and which speaker is the person
    assert any("Speakers in this passage: THE PRESIDENT (the person)" in p and "Q (another speaker" in p for p in prompts)
    with session_scope() as s:
        rows = s.scalars(select(Fragment).where(Fragment.batch_id == jobs[0].batch_id)).all()
        frags = {f.content: f for f in rows}
        checks = checks_for(session=s, fragment_ids=[f.id for f in frags.values()])
        own = checks[frags[PRESIDENT_SAYS].id]
        asked = checks[frags[REPORTER_ASKS].id]
        misquote = checks[next(f.id for c, f in frags.items() if c.startswith("I think that"))]
        assert (own.verbatim, own.attribution) == ("exact", "person")
        assert (asked.verbatim, asked.attribution) == ("exact", "other:Q")
        assert misquote.verbatim == "near" and any(op == "insert" for op, *_ in misquote.diff)
        q = batch_quality(session=s, batch_id=jobs[0].batch_id)
        c = q.score.counts
        # only the president's verbatim words are grounded: the question and the misquote are not
        assert c.direct_quotes == len(rows) and c.quotes_exact == len(rows) - 1
        assert c.grounded == c.checked - 2 and q.score.grounding < 1.0
        calls = s.scalar(select(func.count()).select_from(ExtractionCall))

    # the analyst says the reporter is the person: checks re-run, the LLM is not called again
    with session_scope() as s:
        set_person_labels(session=s, source_id=sid, labels=["Q"])
        recompute_source(session=s, source_id=sid)
    with session_scope() as s:
        assert s.scalar(select(FragmentCheck.attribution).where(FragmentCheck.fragment_id == frags[REPORTER_ASKS].id)) == "person"
        assert s.scalar(select(FragmentCheck.attribution).where(FragmentCheck.fragment_id == frags[PRESIDENT_SAYS].id)) == "other:THE PRESIDENT"
        assert s.scalar(select(func.count()).select_from(ExtractionCall)) == calls
    with pytest.raises(ValueError, match="Not a speaker"):
        with session_scope() as s:
            set_person_labels(session=s, source_id=sid, labels=["NOBODY"])


def test_judge_job_stores_verdicts_survives_a_malformed_answer_and_moves_the_score(fake_llm, embedder_or_skip, monkeypatch):
    monkeypatch.setenv("MMOS_JUDGE_ENABLED", "true")
    monkeypatch.setenv("MMOS_JUDGE_MAX_FRAGMENTS", "0")
    get_settings.cache_clear()
    sid = _source(500)
    judged: list[str] = []

    def respond(req):
        system = req["messages"][0]["content"]
        user = req["messages"][1]["content"]
        if "supported" in system and "Insight:" in user:  # a judge call
            judged.append(user)
            if len(judged) == 1:
                return 200, chat_completion("{not json")  # malformed once: stored, retried by the job
            return 200, chat_completion(json.dumps({"reason": "The quote says nothing of it.", "supported": "no",
                                                    "category": "Social"}))
        return 200, chat_completion(_answer([("Good afternoon, ladies and gentlemen.", "He is a warm host.")]))

    fake_llm["respond"] = respond
    with session_scope() as s:
        jobs = queue_extraction(session=s, source_id=sid, model_names=[LARGE])
    enqueue_batches(jobs)
    _drain()
    batch_id = jobs[0].batch_id
    with session_scope() as s:
        first = s.scalars(select(JudgeVerdict.status)).all()
        assert sorted(set(first)) == ["malformed", "ok"] and first.count("malformed") == 1  # stored as such
    assert get_queue("low").scheduled_job_registry.get_job_ids()  # RQ retries the job for it
    from workers.judging import run_judging

    assert run_judging(batch_id)["judged"] == 1  # the retry judges only what is missing
    with session_scope() as s:
        verdicts = s.scalars(select(JudgeVerdict).join(Fragment, Fragment.id == JudgeVerdict.fragment_id)
                             .where(Fragment.batch_id == batch_id)).all()
        n = s.scalar(select(func.count()).select_from(Fragment).where(Fragment.batch_id == batch_id))
        assert len(verdicts) == n and all(v.status == "ok" and v.support == "no" for v in verdicts)
        # the OpenAI key the fake sets makes gpt-4o-mini available: the strongest configured model judges,
        # and its verdicts are priced from litellm's map (120 + 40 tokens)
        assert {(v.judge_model, v.rubric_version, v.prompt_tokens) for v in verdicts} == {("gpt-4o-mini", "support-v1", 120)}
        assert all(float(v.cost_usd) == pytest.approx(0.000042) for v in verdicts)
        assert {(v.category_agrees, v.judge_category) for v in verdicts} == {(False, "Social")}
        assert len(judged) == n + 1  # the malformed answer was retried once
        perf = s.scalar(select(ModelPerformance).where(ModelPerformance.batch_id == batch_id))
        assert perf.judged_fragments == n and float(perf.support_rate) == 0.0
        q = batch_quality(session=s, batch_id=batch_id)
        assert q.score.support == 0.0 and q.score.grounding == 1.0 and q.score.score < 7.0


def test_judge_draws_on_the_shared_rate_limit_and_waits_out_a_429(fake_llm, embedder_or_skip, monkeypatch):
    monkeypatch.setenv("MMOS_JUDGE_ENABLED", "true")
    monkeypatch.setenv("MMOS_JUDGE_MAX_FRAGMENTS", "1")
    monkeypatch.setenv("MMOS_LLM_RPM_LIMITS", '{"openai": 100}')
    get_settings.cache_clear()
    sid = _source(300)
    seen: list[int] = []

    def respond(req):
        user = req["messages"][1]["content"]
        if "Insight:" in user:  # a judge call: refused once with Retry-After, then answered
            seen.append(1)
            if len(seen) == 1:
                return 429, {"error": {"message": "slow down", "type": "rate_limit_error"}}
            return 200, chat_completion(json.dumps({"reason": "It says so.", "supported": "yes", "category": "Values and Beliefs"}))
        return 200, chat_completion(_answer([("Good afternoon, ladies and gentlemen.", "He greets the press.")]))

    fake_llm["respond"] = respond
    with session_scope() as s:
        jobs = queue_extraction(session=s, source_id=sid, model_names=[LARGE])
    enqueue_batches(jobs)
    _drain()
    with session_scope() as s:
        verdicts = s.scalars(select(JudgeVerdict)).all()
        assert [(v.status, v.support) for v in verdicts] == [("ok", "yes")]
    assert len(seen) == 2  # the 429 was waited out, not stored as a failure
    assert get_redis().keys("mmos:ratelimit*")  # the judge's requests were counted in the shared window


def test_cli_lists_speakers_and_changes_the_person():
    from typer.testing import CliRunner

    from mmos_core.cli.app import app

    sid = _source()
    out = CliRunner().invoke(app, ["speakers", str(sid)])
    assert out.exit_code == 0 and "* THE PRESIDENT" in out.output and "  Q " in out.output
    out = CliRunner().invoke(app, ["speakers", str(sid), "--person", "Q"])
    assert out.exit_code == 0 and "set to Q" in out.output and "* Q " in out.output
    out = CliRunner().invoke(app, ["speakers", str(sid), "--person", "NOBODY"])
    assert out.exit_code == 1 and "Not a speaker" in out.output
