"""The embedding contract shared by every layer: the vector width and the `Embed` callable.

`EMBEDDING_DIM` is the width of all-MiniLM-L6-v2's sentence embeddings (docs/embeddings.md); every
`vector(384)` column and every embedder must agree with it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["EMBEDDING_DIM", "Embed"]

#: Width of every stored embedding (all-MiniLM-L6-v2, docs/embeddings.md).
EMBEDDING_DIM = 384

#: texts (n strings) → float32 array of shape (n, EMBEDDING_DIM), rows L2-normalised.
Embed = Callable[[Sequence[str]], np.ndarray]
