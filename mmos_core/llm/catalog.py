"""Which models the workbench can queue, and how litellm reaches each of them.

Local models (the llama.cpp server) are always listed; cloud models from `settings.cloud_models`
are listed only when litellm finds their provider key in the environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from types import ModuleType

from mmos_core.core.config import Settings, get_settings
from mmos_core.llm.cost import PriceSnapshot, lookup_prices
from mmos_core.llm.local_models import LOCAL_MODELS
from mmos_core.llm.server import register_litellm_prices, server_url


class UnknownModelError(LookupError):
    """The model is not in the catalog (not local, not configured, or its provider key is unset)."""


@dataclass(frozen=True)
class ModelSpec:
    """A model the workbench can run.

    `name` is what batches store as `model_name`; `litellm_model` is what litellm is called with.
    """

    name: str
    provider: str
    litellm_model: str
    is_local: bool
    api_base: str | None = None

    @property
    def api_key(self) -> str | None:
        """Placeholder key for the local server (it checks none); cloud keys come from the environment."""
        return "local-no-key" if self.is_local else None


@lru_cache(maxsize=1)
def litellm() -> ModuleType:
    """Import litellm once, offline: local price map, no banner, no telemetry callbacks."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm as _litellm

    _litellm.suppress_debug_info = True
    _litellm.telemetry = False
    _litellm.drop_params = True
    register_litellm_prices()
    return _litellm


def local_models(settings: Settings | None = None) -> list[ModelSpec]:
    """The llama.cpp-served models, cheapest (smallest) first."""
    settings = settings or get_settings()
    return [
        ModelSpec(
            name=alias,
            provider="local",
            litellm_model=f"openai/{alias}",
            is_local=True,
            api_base=server_url(settings),
        )
        for alias in LOCAL_MODELS
    ]


def cloud_models(settings: Settings | None = None, *, only_with_keys: bool = True) -> list[ModelSpec]:
    """Configured cloud models; with `only_with_keys`, only those whose provider key is set."""
    settings = settings or get_settings()
    names = [n.strip() for n in settings.cloud_models.split(",") if n.strip()]
    if not names:
        return []
    ll = litellm()
    specs = []
    for name in names:
        if only_with_keys and not ll.validate_environment(name).get("keys_in_environment"):
            continue
        _, provider, _, _ = ll.get_llm_provider(name)
        specs.append(ModelSpec(name=name, provider=provider, litellm_model=name, is_local=False))
    return specs


def available_models(settings: Settings | None = None) -> list[ModelSpec]:
    """Everything that can be queued right now: local models, then cloud models with keys."""
    return local_models(settings) + cloud_models(settings)


def get_model(name: str, settings: Settings | None = None) -> ModelSpec:
    """The spec of `name`.

    Raises:
        UnknownModelError: not local and not a configured cloud model with its key set.
    """
    for spec in local_models(settings):
        if spec.name == name:
            return spec
    for spec in cloud_models(settings, only_with_keys=False):
        if spec.name == name:
            if not litellm().validate_environment(name).get("keys_in_environment"):
                missing = ", ".join(litellm().validate_environment(name).get("missing_keys", []))
                raise UnknownModelError(f"Model {name!r} needs {missing or 'its provider key'} in the environment.")
            return spec
    raise UnknownModelError(f"Model {name!r} is neither a local model nor listed in MMOS_CLOUD_MODELS.")


def price_snapshot(spec: ModelSpec) -> PriceSnapshot:
    """Prices for `spec` from litellm's price map (local models: zero, labelled as such)."""
    if spec.is_local:
        return PriceSnapshot(spec.name, 0.0, 0.0, source="local llama.cpp server (no per-token price)")
    ll = litellm()
    version = getattr(ll, "__version__", None) or _dist_version("litellm")
    return lookup_prices(spec.litellm_model, ll.model_cost, source=f"litellm {version} price map")


def _dist_version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)
