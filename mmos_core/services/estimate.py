"""Cost estimate of an extraction batch before anything is queued (docs/quality.md).

Formula, per model, over the chunks the batch would send (one call per chunk):

* ``input_tokens`` = Σ ``litellm.token_counter(model=spec.litellm_model, messages=build_messages(chunk))``
  — the exact prompt each call sends (system prompt + passage with its source metadata), counted
  with the model's tokenizer where litellm knows it (tiktoken's cl100k otherwise).
* ``max_output_tokens_total`` = ``max_output_tokens`` × number of chunks (the ``max_tokens`` cap asked per call).
* ``expected_usd_low`` = Σ ``cost_usd(prices, input_tokens=chunk_input, output_tokens=0)`` — the input
  side alone: every call pays at least this, whatever the model answers (a floor, not a forecast).
* ``worst_case_usd`` = Σ ``cost_usd(prices, input_tokens=chunk_input, output_tokens=max_output_tokens)``
  — every call answering with the full ``max_tokens``; no successful batch costs more (provider
  retries of a failed call and job-level retries are not included).

Costs are summed per chunk after ``cost_usd``'s 1e-6 rounding, as batches record them. Local
models have zero prices, so both amounts are 0 while the token counts stay meaningful.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from mmos_core.core.config import get_settings
from mmos_core.llm.catalog import ModelSpec, get_model, litellm, price_snapshot
from mmos_core.llm.cost import PriceSnapshot, cost_usd
from mmos_core.llm.extraction import build_messages
from mmos_core.models import Source, SourceChunk


@dataclass(frozen=True)
class CostEstimate:
    """Estimate of one batch on one model (see the module docstring for the formula)."""

    input_tokens: int
    max_output_tokens_total: int
    expected_usd_low: Decimal
    worst_case_usd: Decimal


def estimate_batch_cost(
    *,
    chunk_texts: list[str],
    title: str,
    person: str | None,
    source_type: str,
    spec: ModelSpec,
    prices: PriceSnapshot,
    max_output_tokens: int,
) -> CostEstimate:
    """Token count and USD bounds of sending each of `chunk_texts` to `spec` once.

    Raises:
        ValueError: negative `max_output_tokens`.
    """
    if max_output_tokens < 0:
        raise ValueError("max_output_tokens cannot be negative")
    ll = litellm()
    input_total = 0
    low = Decimal(0)
    worst = Decimal(0)
    for text in chunk_texts:
        messages = build_messages(chunk_text=text, title=title, person=person, source_type=source_type)
        n = int(ll.token_counter(model=spec.litellm_model, messages=messages))
        input_total += n
        low += cost_usd(prices, input_tokens=n, output_tokens=0)
        worst += cost_usd(prices, input_tokens=n, output_tokens=max_output_tokens)
    return CostEstimate(
        input_tokens=input_total,
        max_output_tokens_total=max_output_tokens * len(chunk_texts),
        expected_usd_low=low,
        worst_case_usd=worst,
    )


def estimate_for_source(
    *,
    session: Session,
    source_id: int,
    model_names: list[str],
    max_output_tokens: int | None = None,
) -> list[tuple[str, CostEstimate]]:
    """Estimate for every chunk of a source, per model (in the order given, duplicates dropped).

    Prices are the same `price_snapshot` that `queue_extraction` would store on the batch;
    `max_output_tokens` defaults to `settings.llm_max_output_tokens`.

    Raises:
        LookupError: unknown source.
        mmos_core.llm.catalog.UnknownModelError: a model is not available.
    """

    source = session.get(Source, source_id)
    if source is None:
        raise LookupError(f"No source with id {source_id}.")
    if max_output_tokens is None:
        max_output_tokens = get_settings().llm_max_output_tokens
    spans = session.execute(
        select(SourceChunk.char_start, SourceChunk.char_end)
        .where(SourceChunk.source_id == source_id)
        .order_by(SourceChunk.chunk_index)
    ).all()
    texts = [source.content[start:end] for start, end in spans]
    out = []
    for name in dict.fromkeys(model_names):
        spec = get_model(name)
        out.append(
            (
                name,
                estimate_batch_cost(
                    chunk_texts=texts,
                    title=source.title,
                    person=source.person,
                    source_type=source.source_type,
                    spec=spec,
                    prices=price_snapshot(spec),
                    max_output_tokens=max_output_tokens,
                ),
            )
        )
    return out
