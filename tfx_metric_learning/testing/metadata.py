"""``sqlite_store``: a real ML Metadata store in a SQLite file, as the local runner uses.

Not a mock: the store is ``ml_metadata``'s own, so what a test records (artifacts,
executions, contexts) and reads back goes through the same code as a pipeline run's.
"""

from __future__ import annotations

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2


def sqlite_store(path: str) -> metadata_store.MetadataStore:
    """A store backed by the SQLite file ``path`` (created if absent, reused if present)."""
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = path
    config.sqlite.connection_mode = (
        metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    )
    return metadata_store.MetadataStore(config)
