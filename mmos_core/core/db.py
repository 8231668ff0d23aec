"""The one SQLAlchemy engine and sessionmaker of a process.

Callers own transactions: `with SessionLocal().begin() as session:` (or `session_scope()`), and
services take `session=` and never commit.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from mmos_core.core.embedded import database_url


@lru_cache(maxsize=1)
def get_engine() -> Engine:
    """Process-wide engine for the configured (or embedded) PostgreSQL; pool_pre_ping survives restarts."""
    return create_engine(database_url(), pool_pre_ping=True, pool_size=5, max_overflow=5)


@lru_cache(maxsize=1)
def get_sessionmaker() -> sessionmaker[Session]:
    """Process-wide sessionmaker bound to `get_engine()`; sessions keep objects usable after commit."""
    return sessionmaker(bind=get_engine(), expire_on_commit=False)


@contextmanager
def session_scope() -> Iterator[Session]:
    """One transaction: commits when the block ends, rolls back on an exception."""
    with get_sessionmaker().begin() as session:
        yield session


def _after_fork_in_child() -> None:
    # A forked RQ work horse must not use the parent's pooled connections (SQLAlchemy's
    # documented pattern: dispose without closing the parent's sockets).
    if get_engine.cache_info().currsize:
        get_engine().dispose(close=False)


os.register_at_fork(after_in_child=_after_fork_in_child)


def reset() -> None:
    """Forget the cached engine (tests switching data dirs; after fork in workers)."""
    if get_engine.cache_info().currsize:
        get_engine().dispose()
    get_engine.cache_clear()
    get_sessionmaker.cache_clear()
