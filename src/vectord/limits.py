"""Every size limit of vectord in one place, shared by the engine, the server and the SDK."""

#: Largest gRPC message in either direction, on the server and in the SDK (equal on both
#: ends, so neither side accepts what the other would refuse). The SDK splits batches to fit.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
#: Records in one write, or ids in one get.
MAX_BATCH_RECORDS = 100_000
#: Bytes of UTF-8 in one record id.
MAX_ID_BYTES = 512
#: Bytes of UTF-8 in one document.
MAX_DOCUMENT_BYTES = 1024 * 1024
#: Bytes of one record's metadata, msgpack-encoded.
MAX_METADATA_BYTES = 64 * 1024
#: Nesting depth of metadata maps and lists (a flat dict has depth 1).
MAX_METADATA_DEPTH = 8
#: Nesting depth of a filter.
MAX_FILTER_DEPTH = 16
#: Vector dimension.
MAX_DIM = 65_536
#: Results per query.
MAX_N_RESULTS = 10_000
#: Query vectors in one query call.
MAX_QUERIES = 10_000
#: Results in one query call, all its queries together (queries x n_results), checked before
#: any search: 10,000 queries of 10, or 25 of 10,000. Each result row costs the server a
#: Python object or two (~250 bytes with document and metadata) before the reply is sized.
MAX_QUERY_RESULTS = 250_000
#: Collections in one data directory.
MAX_COLLECTIONS = 10_000
#: Characters in a collection name.
MAX_COLLECTION_NAME = 128
#: Bytes of one uploaded snapshot (RestoreSnapshot with files), all its files together:
#: the server refuses the stream past it, before the disk fills. 64 GiB holds the vectors
#: and records of ~10M 1536-d records; the uploaded HNSW graph is not stored (it is rebuilt).
MAX_SNAPSHOT_UPLOAD_BYTES = 64 * 1024 ** 3
