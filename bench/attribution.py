"""Speaker attribution and verbatim grading on six real press conferences (docs/quality.md).

Ground truth does not come from the parser under test: a hand-written table below lists, per file,
the exact line prefixes that start a turn (read off the files), and a plain line-by-line pass assigns
every line to the speaker of the last prefix above it. From each speaker's turns the bench samples
sentences (seeded) and derives quotes:

* ``verbatim``: the sentence as is, expected ``exact``, said by its speaker;
* ``prefix``: "I think that " + the sentence, expected ``near``, said by its speaker;
* ``word``: one word of four or more letters replaced, expected ``near``, said by its speaker;
* ``join``: the last sentence of a turn joined to the first of the next (another speaker), expected
  ``near`` and ``mixed``;
* ``foreign``: a sentence of another file, expected ``not_found``, said by no one here.

Each quote goes through ``check_verbatim`` (whole text, no hint) and, where found,
``check_attribution`` with ``default_person_labels`` for the file's president. Printed: label
errors of ``parse_turns`` against the table; per file and overall the precision and recall of
"person" (goal >= 0.95 each), speaker accuracy, "mixed" recall on joins, and the verbatim confusion.

    python bench/attribution.py                       # ../shared/data/press_conferences
    python bench/attribution.py --per-speaker 40 --seed 7 --data DIR --show-misses
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import re
import sys
import time
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mmos_core.analysis.fragment_checks import check_attribution, check_verbatim  # noqa: E402
from mmos_core.text.sentences import split_sentences  # noqa: E402
from mmos_core.text.speakers import TurnKind, canonical_label, default_person_labels, parse_turns  # noqa: E402

# Line prefixes that start a turn, read off each file by hand (the header "President: NAME" is
# not a turn). Values: ground-truth speaker; PERSON marks the file's president.
GROUND_TRUTH: dict[str, dict[str, str]] = {
    "1977-03-09-remarks-president-carters-press-conference.txt": {
        "THE PRESIDENT. ": "PERSON",
        "Q. ": "Q",
        "FRANK CORMIER [Associated Press]. ": "FRANK CORMIER",
    },
    "1981-01-29-first-press-conference.txt": {
        "The President: ": "PERSON",
        "Q: ": "Q",
        "Q. ": "Q",
        "Ms. Thomas: ": "MS. THOMAS",
    },
    "1991-07-31-press-conference-mikhail-gorbachev.txt": {
        "President Bush. ": "PERSON",
        "President Gorbachev. ": "PRESIDENT GORBACHEV",
        "Q. ": "Q",
        "Mr. Fitzwater. ": "MR. FITZWATER",
    },
    "1993-01-29-press-conference-gays-military.txt": {"The President. ": "PERSON", "Q. ": "Q"},
    "2009-01-12-final-press-conference.txt": {"THE PRESIDENT: ": "PERSON", "Q ": "Q"},
    "2010-11-03-press-conference-after-2010-midterm-elections.txt": {"THE PRESIDENT: ": "PERSON", "Q ": "Q"},
}
PERSON = "PERSON"
REPLACEMENTS = ("really", "certainly", "country", "people", "economy", "problem", "important", "government")


@dataclass
class GtTurn:
    speaker: str
    label_line: int  # offset of the line holding the prefix
    body: int  # offset of the first spoken character
    end: int  # offset where the next turn's line starts


@dataclass
class Item:
    kind: str  # verbatim | prefix | word | join | foreign
    quote: str
    expected: str  # exact | near | not_found
    truth: str | None  # ground-truth speaker, "MIXED" for joins, None for foreign


def gt_turns(text: str, prefixes: dict[str, str]) -> list[GtTurn]:
    """Turns from the hand-written prefixes; longest prefix first so "Q. " never shadows a name."""
    order = sorted(prefixes, key=len, reverse=True)
    turns: list[GtTurn] = []
    pos = 0
    for line in text.split("\n"):
        hit = next((p for p in order if line.startswith(p)), None)
        if hit is not None and pos > 0:
            if turns:
                turns[-1].end = pos
            body = pos + len(hit)
            while body < len(text) and text[body] in " \t":
                body += 1
            turns.append(GtTurn(prefixes[hit], pos, body, len(text)))
        pos += len(line) + 1
    return turns


def sentences(text: str, start: int, end: int) -> list[str]:
    """Clean sentences of ``text[start:end]`` (the project's splitter): 6-50 words, no notes, from
    lines that end a sentence, none cut off by an interruption ("--")."""
    out: list[str] = []
    for line in text[start:end].split("\n"):
        line = line.strip()
        if not line or line[-1] not in '.?!"”' or "[" in line or "(" in line:
            continue  # headings, bracketed notes, stage directions
        out.extend(s for s in split_sentences(line) if 6 <= len(s.split()) <= 50 and "--" not in s[-4:])
    return out


def replace_word(sentence: str, rng: random.Random) -> str | None:
    words = sentence.split()
    idx = [i for i, w in enumerate(words) if re.fullmatch(r"[A-Za-z]{4,}[,.;]?", w)]
    if not idx:
        return None
    i = rng.choice(idx)
    core = re.match(r"[A-Za-z]+", words[i]).group()  # type: ignore[union-attr]
    new = rng.choice([r for r in REPLACEMENTS if r != core.lower()])
    words[i] = words[i].replace(core, new, 1)
    return " ".join(words)


def build_items(
    name: str, text: str, turns: list[GtTurn], others: list[str], per_speaker: int, seed: int
) -> list[Item]:
    rng = random.Random(seed * 1_000_003 + zlib.crc32(name.encode()))
    by_speaker: dict[str, list[str]] = {}
    owner: dict[str, set[str]] = {}
    for t in turns:
        for s in sentences(text, t.body, t.end):
            by_speaker.setdefault(t.speaker, []).append(s)
            owner.setdefault(s, set()).add(t.speaker)
    items: list[Item] = []
    for speaker, pool in by_speaker.items():
        pool = sorted({s for s in pool if len(owner[s]) == 1})  # said by one speaker only
        for s in rng.sample(pool, min(per_speaker, len(pool))):
            items.append(Item("verbatim", s, "exact", speaker))
            items.append(Item("prefix", "I think that " + s[0].lower() + s[1:], "near", speaker))
            changed = replace_word(s, rng)
            if changed:
                items.append(Item("word", changed, "near", speaker))
    joins = []
    for a, b in itertools.pairwise(turns):
        sa, sb = sentences(text, a.body, a.end), sentences(text, b.body, b.end)
        if a.speaker != b.speaker and sa and sb:
            last, first = sa[-1], sb[0]
            # Only when they are the last and first words of the two turns (nothing skipped between).
            if text[a.body : a.end].rstrip().endswith(last) and text[b.body :].startswith(first):
                joins.append(Item("join", f"{last} {first}", "near", "MIXED"))
    items.extend(rng.sample(joins, min(per_speaker, len(joins))))
    foreign = [s for s in others if s not in text]
    items.extend(Item("foreign", s, "not_found", None) for s in rng.sample(foreign, min(per_speaker, len(foreign))))
    return items


def label_errors(text: str, turns: list[GtTurn], prefixes: dict[str, str]) -> list[str]:
    """Differences between the parser's speaker changes and the hand-written table."""
    parse = parse_turns(text)
    gt_label = {t.body: canonical_label(next(p for p in prefixes if prefixes[p] == t.speaker)) for t in turns}
    errors: list[str] = []
    starts = {t.char_start: t for t in parse.turns}
    for body, label in gt_label.items():
        got = starts.get(body)
        if got is None or got.speaker != label:
            errors.append(f"missed label at {body}: expected {label}, got {got.speaker if got else 'no turn start'}")
    prev = None
    for t in parse.turns:
        if t.kind != TurnKind.SPEECH or not t.speaker:
            continue
        if prev is not None and t.speaker != prev and t.char_start not in gt_label:
            line = text[text.rfind("\n", 0, t.char_start) + 1 : t.char_start + 30]
            errors.append(f"spurious speaker change to {t.speaker} at {t.char_start}: {line!r}")
        prev = t.speaker
    return errors


@dataclass
class Tally:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    speaker_ok: int = 0
    speaker_n: int = 0
    mixed_ok: int = 0
    mixed_n: int = 0
    confusion: Counter | None = None

    def __post_init__(self) -> None:
        self.confusion = Counter()

    def add(self, other: Tally) -> None:
        for f in ("tp", "fp", "fn", "speaker_ok", "speaker_n", "mixed_ok", "mixed_n"):
            setattr(self, f, getattr(self, f) + getattr(other, f))
        self.confusion.update(other.confusion)  # type: ignore[union-attr]


def ratio(a: int, b: int) -> str:
    return f"{a / b:.3f}" if b else "  -  "


def run_file(name: str, text: str, items: list[Item], prefixes: dict[str, str], show: bool) -> Tally:
    parse = parse_turns(text)
    person = text.split("\n", 1)[0].partition(":")[2].strip()
    labels = default_person_labels(parse.speakers, person)
    canon = {v: canonical_label(p) for p, v in prefixes.items()}
    tally = Tally()
    for it in items:
        v = check_verbatim(it.quote, text)
        tally.confusion[(it.expected, str(v.status))] += 1  # type: ignore[index]
        if it.truth is None and v.char_start is None:
            continue
        attr = None if v.char_start is None else check_attribution(v.char_start, v.char_end, parse.turns, labels)
        pred_person = attr is not None and attr.kind == "person"
        true_person = it.truth == PERSON
        if show and (str(v.status) != it.expected or pred_person != true_person):
            got = text[v.char_start : v.char_end] if v.char_start is not None else ""
            print(
                f"  miss {name[:10]} {it.kind:<8} truth={it.truth} got={v.status}/{v.similarity} {attr}\n"
                f"       quote:  {it.quote[:140]!r}\n       source: {got[:140]!r}"
            )
        tally.tp += pred_person and true_person
        tally.fp += pred_person and not true_person
        tally.fn += true_person and not pred_person
        if it.truth == "MIXED":
            tally.mixed_n += 1
            tally.mixed_ok += attr is not None and attr.kind == "mixed"
        elif it.truth is not None:
            tally.speaker_n += 1
            tally.speaker_ok += (
                attr is not None and attr.speaker == canon[it.truth] and attr.kind in ("person", "other")
            )
    return tally


def main(argv: list[str] | None = None) -> int:
    default_data = Path(os.environ.get("MMOS_SHARED_DIR", REPO.parent / "shared")) / "data" / "press_conferences"
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--data", type=Path, default=default_data, help="folder of the six transcripts")
    ap.add_argument("--per-speaker", type=int, default=25, help="sentences sampled per speaker and file")
    ap.add_argument("--seed", type=int, default=1, help="random seed of the sampling")
    ap.add_argument("--show-misses", action="store_true", help="print every wrong grade or person call")
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        print(f"{args.data} not found: pass --data or set MMOS_SHARED_DIR", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    texts = {n: (args.data / n).read_text(encoding="utf-8") for n in GROUND_TRUTH}
    gts = {n: gt_turns(texts[n], GROUND_TRUTH[n]) for n in texts}
    all_sents = {n: [s for t in gts[n] for s in sentences(texts[n], t.body, t.end)] for n in texts}
    total = Tally()
    print(
        f"{'file':<44} {'turns':>5} {'lblerr':>6} {'items':>5} {'P(person)':>9} {'R(person)':>9} "
        f"{'speaker':>7} {'mixed':>6} {'exact':>6} {'near':>6} {'nf':>6}"
    )
    errors_all: dict[str, list[str]] = {}
    for name, text in texts.items():
        others = [s for n, ss in all_sents.items() if n != name for s in ss]
        items = build_items(name, text, gts[name], others, args.per_speaker, args.seed)
        errors_all[name] = label_errors(text, gts[name], GROUND_TRUTH[name])
        t = run_file(name, text, items, GROUND_TRUTH[name], args.show_misses)
        total.add(t)
        c = t.confusion
        print(
            f"{name[:44]:<44} {len(gts[name]):>5} {len(errors_all[name]):>6} {len(items):>5} "
            f"{ratio(t.tp, t.tp + t.fp):>9} {ratio(t.tp, t.tp + t.fn):>9} {ratio(t.speaker_ok, t.speaker_n):>7} "
            f"{ratio(t.mixed_ok, t.mixed_n):>6} "
            + " ".join(
                f"{ratio(c[(e, e)], sum(v for k, v in c.items() if k[0] == e)):>6}"
                for e in ("exact", "near", "not_found")
            )
        )
    c = total.confusion
    print(
        f"{'ALL':<44} {sum(len(g) for g in gts.values()):>5} {sum(len(e) for e in errors_all.values()):>6} "
        f"{sum(c.values()):>5} {ratio(total.tp, total.tp + total.fp):>9} {ratio(total.tp, total.tp + total.fn):>9} "
        f"{ratio(total.speaker_ok, total.speaker_n):>7} {ratio(total.mixed_ok, total.mixed_n):>6}"
    )
    print("\nverbatim confusion (rows: expected, columns: got)")
    print(f"{'':>10} {'exact':>6} {'near':>6} {'not_found':>9}")
    for e in ("exact", "near", "not_found"):
        print(f"{e:>10} " + " ".join(f"{c[(e, g)]:>{w}}" for g, w in (("exact", 6), ("near", 6), ("not_found", 9))))
    for name, errs in errors_all.items():
        for err in errs:
            print(f"label error {name[:10]}: {err}")
    print(f"\n{time.perf_counter() - t0:.1f} s; person precision/recall goal >= 0.95")
    return 0


if __name__ == "__main__":
    sys.exit(main())
