"""Cost in USD as a pure function of (model, usage) over litellm's price map.

Prices come from litellm's bundled `model_prices_and_context_window_backup.json` (read with
`LITELLM_LOCAL_MODEL_COST_MAP=True`, so nothing is fetched). A batch stores the `PriceSnapshot` it
was costed with, so later price-map updates never rewrite past costs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

_USD_QUANTUM = Decimal("0.000001")


class UnknownPriceError(LookupError):
    """The model has no per-token prices in the price map; name it as `<provider>/<model>` or register it."""


@dataclass(frozen=True)
class PriceSnapshot:
    """Per-token prices (USD per token) used to cost a batch, and where they came from."""

    model: str
    input_cost_per_token: float
    output_cost_per_token: float
    source: str  # e.g. "litellm 1.105.3 price map" or "local (free)"

    def as_dict(self) -> dict[str, Any]:
        """JSON form stored in `processing_batches.price_snapshot`."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PriceSnapshot:
        """Inverse of `as_dict`."""
        return cls(
            model=str(data["model"]),
            input_cost_per_token=float(data["input_cost_per_token"]),
            output_cost_per_token=float(data["output_cost_per_token"]),
            source=str(data.get("source", "")),
        )


def lookup_prices(model: str, price_map: Mapping[str, Mapping[str, Any]], *, source: str) -> PriceSnapshot:
    """Prices of `model` in `price_map` (litellm's `model_cost` shape).

    Tries the name as given, then without its provider prefix (`gemini/gemini-2.5-flash` →
    `gemini-2.5-flash`) only if the prefixed name is absent.

    Raises:
        UnknownPriceError: no entry, or the entry lacks input/output per-token prices.
    """
    candidates = [model]
    if "/" in model:
        candidates.append(model.split("/", 1)[1])
    for name in candidates:
        entry = price_map.get(name)
        if entry and "input_cost_per_token" in entry and "output_cost_per_token" in entry:
            return PriceSnapshot(
                model=model,
                input_cost_per_token=float(entry["input_cost_per_token"]),
                output_cost_per_token=float(entry["output_cost_per_token"]),
                source=source,
            )
    raise UnknownPriceError(f"No per-token prices for model {model!r} in the price map ({source}).")


def cost_usd(prices: PriceSnapshot, *, input_tokens: int, output_tokens: int) -> Decimal:
    """USD cost of one call: `input_tokens × input_cost_per_token + output_tokens × output_cost_per_token`.

    Args:
        prices: the snapshot the batch was created with.
        input_tokens, output_tokens: usage reported by the provider (prompt / completion tokens), ≥ 0.
    Returns:
        Cost rounded half-up to 1e-6 USD (the precision of `estimated_cost_usd`).
    Raises:
        ValueError: negative token counts.
    """
    if input_tokens < 0 or output_tokens < 0:
        raise ValueError("token counts cannot be negative")
    raw = Decimal(repr(prices.input_cost_per_token)) * input_tokens + Decimal(
        repr(prices.output_cost_per_token)
    ) * output_tokens
    return raw.quantize(_USD_QUANTUM, rounding=ROUND_HALF_UP)
