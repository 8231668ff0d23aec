"""Parsing the PRD vicuna80 votes and the rule that turns a vote into feedback."""

from __future__ import annotations

import json

import pytest

from mmos_core.services.catalog.votes import VoteImportError, feedback_of, parse_votes, posterior_from_votes, win_rates


def line(m1: str, m2: str, score: int, row: int, qid: int = 1) -> str:
    return json.dumps({"model_1": m1, "model_2": m2, "question_id": qid, "question": "How?", "score": score,
                       "row_in_source": row, "source_file": f"data/vicuna80/ratings-human/answer_{m1}-vs-answer_{m2}.jsonl"})


def test_winner_like_loser_dislike_tie_half_each():
    votes, _ = parse_votes("\n".join([line("gpt4", "bard", 1, 0), line("gpt4", "bard", 2, 1), line("gpt4", "bard", 3, 2)]))
    assert [feedback_of(v) for v in votes] == [
        [("gpt4", "like", None, "won"), ("bard", "dislike", None, "lost")],
        [("bard", "like", None, "won"), ("gpt4", "dislike", None, "lost")],
        [("gpt4", "rating", 3, "tie"), ("bard", "rating", 3, "tie")],
    ]
    assert len({v.key for v in votes}) == 3  # one key per source row


def test_guanaco_votes_are_skipped_and_counted():
    votes, skipped = parse_votes("\n".join([line("guanaco-7b", "gpt4", 1, 0), line("claude", "gpt35", 1, 0), ""]))
    assert len(votes) == 1 and sum(skipped.values()) == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"model_1": "gpt4"', "Line 1"),
        (line("gpt4", "bard", 1, 0) + "\n" + json.dumps({"model_1": "gpt4"}), "Line 2"),
        (line("gpt4", "bard", 4, 0), "score 4"),
        ("", "no votes"),
    ],
)
def test_malformed_files_are_refused_with_the_line(text, message):
    with pytest.raises(VoteImportError, match=message):
        parse_votes(text)


def test_posterior_order_matches_win_rate_order_on_a_small_fixture():
    # gpt4 beats everyone most of the time, bard loses most, claude in between with ties
    rows = []
    pattern = [("gpt4", "bard", 1)] * 8 + [("gpt4", "bard", 2)] * 2 + [("claude", "bard", 1)] * 6 + [("claude", "bard", 3)] * 4
    pattern += [("gpt4", "claude", 1)] * 6 + [("gpt4", "claude", 2)] * 4
    for i, (a, b, s) in enumerate(pattern):
        rows.append(line(a, b, s, i))
    votes, _ = parse_votes("\n".join(rows))
    rates = win_rates(votes)
    post = posterior_from_votes(votes)
    by_rate = sorted(rates, key=lambda m: -rates[m].win_rate)
    assert by_rate == sorted(post, key=lambda m: -post[m].mean) == sorted(post, key=lambda m: -post[m].low)
    assert by_rate == ["gpt-4", "claude", "bard"]
    assert rates["claude"].ties == 4 and rates["claude"].win_rate == pytest.approx((6 + 4 + 2) / 20)
