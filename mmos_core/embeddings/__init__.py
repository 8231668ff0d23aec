"""Sentence embeddings (all-MiniLM-L6-v2, 384-d) on onnxruntime; see docs/embeddings.md.

Run time: `get_embedder().embed(texts)`. Provisioning (build the ONNX model once):
`provision_embedder()` or `python -m mmos_core.embeddings.provision`.
"""

from mmos_core.embeddings.embedder import DIMENSION, Embedder, EmbedderUnavailable, get_embedder

_PROVISION_NAMES = {"ProvisioningError", "is_provisioned", "model_dir", "provision_embedder"}


def __getattr__(name: str):
    # Lazy, so `python -m mmos_core.embeddings.provision` does not import the module twice.
    if name in _PROVISION_NAMES:
        from mmos_core.embeddings import provision

        return getattr(provision, name)
    raise AttributeError(f"module 'mmos_core.embeddings' has no attribute {name!r}")


__all__ = ["DIMENSION", "Embedder", "EmbedderUnavailable", "get_embedder", *sorted(_PROVISION_NAMES)]
