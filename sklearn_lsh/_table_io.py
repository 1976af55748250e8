"""Saved form of hash tables (``HashTables.__reduce__``).

Tables hold what the neurons hashed to at the last rebuild (the
weights of that moment, not the current ones), so rebuilding them on load
from the current weights would change the model: training would not go on as
it would have without the round trip. They are saved instead, compactly:
with no bucket capacity, build() keeps every item in each table, ordered by
id within a bucket, so a table is exactly the bucket key of each item
(n_items keys of log2(n_buckets) bits, bit-packed), where its arrays take 4
bytes per item and per bucket. Tables not of that form (checked by
unpacking) are saved as their arrays.
"""

import numpy as np

PACKED_FORMAT = "sklearn_lsh.tables.keys/1"
ARRAYS_FORMAT = "sklearn_lsh.tables.arrays/1"
_PACK_CHUNK = 1 << 16  # items per chunk of bits; a multiple of 8


def _pack_keys(keys, n_bits):
    """Bit-pack the keys of one table, ``n_bits`` bits each, little-endian."""
    shifts = np.arange(n_bits, dtype=np.uint32)
    parts = []
    for start in range(0, keys.shape[0], _PACK_CHUNK):
        bits = (keys[start:start + _PACK_CHUNK, None] >> shifts) & 1
        parts.append(np.packbits(bits.astype(np.uint8), bitorder="little"))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint8)


def _unpack_keys(packed, n_items, n_bits):
    keys = np.empty(n_items, dtype=np.uint32)
    weights = np.left_shift(np.uint32(1), np.arange(n_bits, dtype=np.uint32))
    chunk_bytes = _PACK_CHUNK * n_bits // 8
    for i, start in enumerate(range(0, n_items, _PACK_CHUNK)):
        stop = min(n_items, start + _PACK_CHUNK)
        bits = np.unpackbits(packed[i * chunk_bytes:(i + 1) * chunk_bytes],
                             count=(stop - start) * n_bits, bitorder="little")
        keys[start:stop] = bits.reshape(-1, n_bits) @ weights
    return keys


def _tables_from_keys(keys, n_buckets):
    """The offsets and ids rows of one table that ``build`` makes from keys."""
    offsets = np.zeros(n_buckets + 1, dtype=np.int32)
    np.cumsum(np.bincount(keys, minlength=n_buckets), out=offsets[1:])
    ids = np.argsort(keys, kind="stable").astype(np.int32)
    return offsets, ids


def pack_tables(tables, compact=True):
    """The saved form of tables: a dict of parameters and arrays (bucket keys
    when ``compact`` and the keys describe the tables)."""
    params = {"n_tables": tables.n_tables, "n_buckets": tables.n_buckets,
              "n_items": tables.n_items, "capacity": tables.capacity,
              "policy": tables.policy, "seed": tables.seed}
    as_arrays = {"format": ARRAYS_FORMAT, "params": params,
                 "offsets": tables.offsets, "ids": tables.ids,
                 "n_reinserts": int(tables.n_reinserts)}
    offsets, ids = tables.offsets, tables.ids
    n_tables, n_items = ids.shape
    n_buckets = offsets.shape[1] - 1
    if not compact or (offsets[:, n_buckets] != n_items).any():
        return as_arrays  # a capacity dropped ids: the keys do not say which
    n_bits = max(1, (n_buckets - 1).bit_length())
    packed = []
    for t in range(n_tables):
        keys = np.empty(n_items, dtype=np.uint32)
        keys[ids[t]] = np.repeat(np.arange(n_buckets, dtype=np.uint32),
                                 np.diff(offsets[t]))
        new_offsets, new_ids = _tables_from_keys(keys, n_buckets)
        if not (np.array_equal(new_offsets, offsets[t])
                and np.array_equal(new_ids, ids[t])):
            return as_arrays
        packed.append(_pack_keys(keys, n_bits))
    return {"format": PACKED_FORMAT, "params": params, "n_bits": n_bits,
            "keys": np.stack(packed), "n_reinserts": int(tables.n_reinserts)}


def load_tables(saved):
    """HashTables from the saved form of ``pack_tables``, checked."""
    from ._tables import HashTables

    fmt = saved.get("format") if isinstance(saved, dict) else None
    if fmt not in (PACKED_FORMAT, ARRAYS_FORMAT):
        raise ValueError(
            f"The saved hash tables are in format {fmt!r}, which this version "
            "of sklearn_lsh cannot read; refit the model."
        )
    tables = HashTables(**saved["params"])
    if fmt == ARRAYS_FORMAT:
        tables.__setstate__(saved)
        return tables
    n_tables, n_buckets, n_items = tables.n_tables, tables.n_buckets, tables.n_items
    n_bits = max(1, (n_buckets - 1).bit_length())
    keys = np.asarray(saved["keys"])
    if (saved["n_bits"] != n_bits or keys.dtype != np.uint8
            or keys.shape != (n_tables, -(-n_items * n_bits // 8))):
        raise ValueError(
            f"The saved keys of the hash tables have shape {keys.shape} and "
            f"{saved['n_bits']} bits a key; tables of {n_tables} x {n_items} "
            f"items in {n_buckets} buckets need "
            f"({n_tables}, {-(-n_items * n_bits // 8)}) uint8 and {n_bits} bits."
        )
    offsets = np.empty((n_tables, n_buckets + 1), dtype=np.int32)
    ids = np.empty((n_tables, n_items), dtype=np.int32)
    for t in range(n_tables):
        table_keys = _unpack_keys(keys[t], n_items, n_bits)
        if table_keys.max(initial=0) >= n_buckets:  # only when n_buckets is 1
            raise ValueError(f"The saved keys of table {t} exceed its buckets.")
        offsets[t], ids[t] = _tables_from_keys(table_keys, n_buckets)
    tables.__setstate__({"offsets": offsets, "ids": ids,
                         "n_reinserts": saved["n_reinserts"]})
    return tables
