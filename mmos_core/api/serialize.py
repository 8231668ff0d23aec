"""Service results as JSON-ready values: dataclasses and ORM rows to dicts, Decimal to float, times to ISO 8601."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import math
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import inspect as sa_inspect


def to_json(value: Any, *, extra: Iterable[str] = ()) -> Any:
    """`value` as plain JSON types.

    Dataclasses become dicts of their fields (plus the properties named in `extra`, at the top level);
    SQLAlchemy rows become dicts of their column attributes; Decimal → float; NaN/inf → None;
    date/datetime → ISO 8601 strings; enums → their value; tuples and sets → lists.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
        out.update({name: to_json(getattr(value, name)) for name in extra})
        return out
    if isinstance(value, enum.Enum):
        return to_json(value.value)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, str | int | bool) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_json(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return to_json(value.item())
    mapper = sa_inspect(value, raiseerr=False)
    if mapper is not None and hasattr(mapper, "mapper"):
        return {attr.key: to_json(getattr(value, attr.key)) for attr in mapper.mapper.column_attrs}
    raise TypeError(f"cannot serialise {type(value).__name__}")
