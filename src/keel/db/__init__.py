"""The metadata database: engines, transactions with retries, migrations.

Domain packages declare their tables on :data:`metadata`; Alembic migrations under
``keel/db/migrations`` create them. ``connect(url)`` returns an engine whose schema is current.
"""

from keel.db._engine import connect, dispose_all, engine_for, transaction
from keel.db._metadata import metadata
from keel.db._migrate import current_revision, head_revision, upgrade
from keel.db._store import SqlStore

__all__ = [
    "SqlStore",
    "connect",
    "current_revision",
    "dispose_all",
    "engine_for",
    "head_revision",
    "metadata",
    "transaction",
    "upgrade",
]
