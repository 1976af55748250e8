"""Read sparse text data in blocks, with memory bounded by the block size.

Two formats:

- svmlight / libsvm (``label index:value ...``), as read by
  :func:`sklearn.datasets.load_svmlight_file`: :func:`iter_svmlight_blocks`
  yields the same rows, ``block_size`` at a time.
- the Extreme Classification Repository's text format (the files of
  Amazon-670K, Wiki10-31K, Delicious-200K, ...): a header line
  ``n_rows n_features n_labels``, then one line per row,
  ``l1,l2,... f:v f:v ...`` with zero-based label and feature indices (a row
  without labels starts with a space). :func:`iter_xc_blocks` reads it and
  :func:`dump_xc_file` writes it.

Each block is parsed by scikit-learn's own svmlight parser, so the values and
the rules (comments after ``#``, ``qid:`` ignored, sorted unique indices) are
those of :func:`~sklearn.datasets.load_svmlight_file`. Memory is that of one
block's text and arrays, whatever the size of the file. A file can also be
read in byte ranges (``offset``, ``length``) so that several processes, such
as Dask workers, each read their own part of it.
"""

import bz2
import gzip
import io
import itertools
import numbers
import os
import time

import numpy as np
import scipy.sparse as sp
from sklearn.datasets import dump_svmlight_file, load_svmlight_file

__all__ = [
    "dump_xc_file",
    "iter_svmlight_blocks",
    "iter_xc_blocks",
    "read_xc_header",
]


def _open(path):
    """A binary file for reading; ``.gz`` and ``.bz2`` are decompressed."""
    path = os.fspath(path)
    if path.endswith(".gz"):
        return gzip.open(path, "rb")
    if path.endswith(".bz2"):
        return bz2.open(path, "rb")
    return open(path, "rb")


def _check_block_size(block_size):
    if not isinstance(block_size, numbers.Integral) or block_size < 1:
        raise ValueError(f"block_size must be a positive int; got {block_size!r}.")


def _check_range(path, offset, length):
    if not isinstance(offset, numbers.Integral) or offset < 0:
        raise ValueError(f"offset must be a non-negative int; got {offset!r}.")
    if not isinstance(length, numbers.Integral):
        raise ValueError(f"length must be an int; got {length!r}.")
    if (offset or length > 0) and os.fspath(path).endswith((".gz", ".bz2")):
        raise ValueError("offset and length need an uncompressed file.")


def _split_line(line):
    """The data part of a line (before any ``#``), stripped."""
    return line.split(b"#", 1)[0].strip()


class _LineReader:
    """Lines of one byte range of a file, with their line numbers.

    A range owns the lines that start inside ``[offset, offset + length)``
    (the whole file when ``length <= 0``), so consecutive ranges split a file
    without losing or repeating a line. Line numbers count from 1 at the
    start of the file when ``offset`` is 0; otherwise from the first line of
    the range, and errors say so.
    """

    def __init__(self, f, name, offset=0, length=-1, start=0):
        self.f = f
        self.name = name
        self.end = offset + length if length > 0 else None
        self.pos = max(offset, start)
        self.exact_lines = offset <= start
        self.first_line_offset = None
        if self.pos > start:
            # Skip the end of the line that started before the range.
            f.seek(self.pos - 1)
            self.pos += len(f.readline()) - 1
        elif start:
            f.seek(start)
        self.lineno = 0
        self.first_line_offset = self.pos

    def where(self, lineno):
        if self.exact_lines:
            return f"{self.name}, line {lineno}"
        return (f"{self.name}, line {lineno} of the range starting at byte "
                f"{self.first_line_offset}")

    def read(self, n):
        """Up to ``n`` lines as (list of lines, list of their numbers)."""
        lines, numbers_ = [], []
        while len(lines) < n:
            if self.end is not None and self.pos >= self.end:
                break
            line = self.f.readline()
            if not line:
                break
            self.pos += len(line)
            self.lineno += 1
            lines.append(line)
            numbers_.append(self.lineno)
        return lines, numbers_


def _parse(lines, linenos, where, **kwargs):
    """Parse lines with scikit-learn's parser; name the first bad line."""
    try:
        return load_svmlight_file(io.BytesIO(b"".join(lines)), **kwargs)
    except ValueError:
        pass
    # Slow path, only on error: find the first line the parser rejects.
    for line, lineno in zip(lines, linenos):
        if not _split_line(line):
            continue
        try:
            load_svmlight_file(io.BytesIO(line), **kwargs)
        except ValueError as exc:
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            if len(text) > 80:
                text = text[:77] + "..."
            raise ValueError(f"{where(lineno)}: {exc} (line: {text!r})") from None
    raise ValueError(f"{where(linenos[0])}: cannot parse the block starting here.")


class _Progress:
    def __init__(self, name, verbose, total_bytes):
        self.name = name
        self.verbose = verbose
        self.total = total_bytes
        self.t0 = time.perf_counter()
        self.rows = 0

    def block(self, index, n_rows, nnz, pos):
        start = self.rows
        self.rows += n_rows
        if not self.verbose:
            return
        share = f" ({100 * pos / self.total:.0f}%)" if self.total else ""
        print(f"[{self.name}] block {index}: rows {start}-{self.rows - 1}, "
              f"{nnz} non-zeros; {pos / 1e6:.1f} MB read{share}, "
              f"{time.perf_counter() - self.t0:.1f} s", flush=True)


def _file_size(path):
    path = os.fspath(path)
    if path.endswith((".gz", ".bz2")):
        return None
    return os.path.getsize(path)


def _range_total(path, offset, length):
    size = _file_size(path)
    if size is None:
        return None
    return min(size, offset + length) if length > 0 else size


# ---------------------------------------------------------------- svmlight
def _scan_svmlight(path, block_size):
    """The smallest and largest feature index of a file (one pass)."""
    low, high = None, -1
    with _open(path) as f:
        reader = _LineReader(f, os.fspath(path))
        while True:
            lines, linenos = reader.read(block_size)
            if not lines:
                break
            X, _ = _parse(lines, linenos, reader.where, zero_based=True,
                          multilabel=True)
            if X.nnz:
                low = min(low, X.indices.min()) if low is not None else X.indices.min()
                high = max(high, X.indices.max())
    return low, high


def iter_svmlight_blocks(f, block_size=10_000, *, n_features=None,
                         dtype=np.float64, multilabel=False, zero_based="auto",
                         offset=0, length=-1, verbose=0):
    """Read an svmlight / libsvm file ``block_size`` rows at a time.

    The blocks, stacked, equal what
    :func:`sklearn.datasets.load_svmlight_file` returns for the whole file with
    the same ``n_features``, ``dtype``, ``multilabel`` and ``zero_based``
    (blank and comment lines are not rows, as there).

    Parameters
    ----------
    f : str or path-like
        The file; ``.gz`` and ``.bz2`` files are decompressed on the fly.
    block_size : int, default=10_000
        Rows per block (the last one may be shorter).
    n_features : int, default=None
        Number of columns of every block. None scans the file once first and
        takes the largest index found (plus one, for zero-based indices).
    dtype : numpy dtype, default=np.float64
        Type of the values.
    multilabel : bool, default=False
        If True, each ``y`` is a list of tuples of labels, as in
        ``load_svmlight_file``.
    zero_based : bool or 'auto', default='auto'
        Whether the feature indices start at 0. 'auto' decides as
        ``load_svmlight_file`` does (one-based unless an index 0 occurs),
        which needs the same first pass over the file as ``n_features=None``
        (pass both to read the file once). With ``offset`` or ``length``,
        'auto' means True, as in scikit-learn.
    offset, length : int, default=0 and -1
        Read only the lines that start in the byte range
        ``[offset, offset + length)`` (to the end if ``length <= 0``).
    verbose : int, default=0
        If positive, print a line per block (rows, non-zeros, bytes read,
        elapsed time).

    Yields
    ------
    X : sparse matrix of shape (n_rows, n_features)
        CSR, sorted indices.
    y : ndarray of shape (n_rows,), or list of tuples if ``multilabel``
        The labels (target values).

    Raises
    ------
    ValueError
        On a line the parser rejects, naming the file and line.
    """
    _check_block_size(block_size)
    _check_range(f, offset, length)
    if zero_based == "auto" and (offset or length > 0):
        zero_based = True
    if zero_based == "auto" or n_features is None:
        low, high = _scan_svmlight(f, block_size)
        if zero_based == "auto":
            zero_based = bool(low is None or low == 0)
        n_found = int(high + 1 if zero_based else max(high, 0))
        n_features = n_found if n_features is None else n_features
    kwargs = dict(n_features=n_features, dtype=dtype, multilabel=multilabel,
                  zero_based=zero_based)
    progress = _Progress("iter_svmlight_blocks", verbose,
                         _range_total(f, offset, length))
    with _open(f) as fh:
        reader = _LineReader(fh, os.fspath(f), offset, length)
        for index in itertools.count():
            lines, linenos = reader.read(block_size)
            if not lines:
                return
            X, y = _parse(lines, linenos, reader.where, **kwargs)
            if X.shape[0] == 0:  # only blank or comment lines
                continue
            progress.block(index, X.shape[0], X.nnz, reader.pos)
            yield X, y


# ----------------------------------------------- extreme classification
def _read_header(f, name):
    line = f.readline()
    parts = _split_line(line).split()
    try:
        if len(parts) != 3:
            raise ValueError
        n_rows, n_features, n_labels = (int(p) for p in parts)
        if min(n_rows, n_features, n_labels) < 0:
            raise ValueError
    except ValueError:
        text = line.decode("utf-8", "replace").rstrip("\r\n")
        raise ValueError(
            f"{name}, line 1: expected the header 'n_rows n_features n_labels' "
            f"(three non-negative ints); got {text!r}.") from None
    return (n_rows, n_features, n_labels), len(line)


def read_xc_header(f):
    """Return ``(n_rows, n_features, n_labels)`` from an XC file's header.

    Parameters
    ----------
    f : str or path-like
        A file in the Extreme Classification Repository's text format.

    Returns
    -------
    shape : tuple of 3 ints
        Rows, features and labels, as the header line states them.
    """
    with _open(f) as fh:
        return _read_header(fh, os.fspath(f))[0]


def _labels_to_indicator(labels, n_labels, linenos, where):
    """CSR indicator (int32) of a block's label tuples; bad labels named."""
    lengths = np.fromiter((len(t) for t in labels), dtype=np.int64,
                          count=len(labels))
    flat = np.fromiter(itertools.chain.from_iterable(labels), dtype=np.float64,
                       count=int(lengths.sum()))
    ids = flat.astype(np.int64)
    bad = (ids != flat) | (ids < 0) | (ids >= n_labels)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        row = int(np.searchsorted(np.cumsum(lengths), first, side="right"))
        raise ValueError(
            f"{where(linenos[row])}: label {flat[first]:g} is not an int in "
            f"[0, {n_labels}) (n_labels from the header).")
    indptr = np.zeros(len(labels) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    Y = sp.csr_matrix((np.ones(ids.size, dtype=np.int32), ids.astype(np.int32),
                       indptr), shape=(len(labels), n_labels))
    Y.sum_duplicates()
    if Y.nnz != ids.size:
        row = int(np.flatnonzero(np.diff(Y.indptr) != lengths)[0])
        raise ValueError(f"{where(linenos[row])}: a label is repeated.")
    return Y


def _with_empty_rows(X, labels, blank, n_lines):
    """Insert the rows of blank lines (no labels, no features) into a block."""
    if not blank.any():
        return X, labels
    counts = np.zeros(n_lines, dtype=np.int64)
    counts[~blank] = np.diff(X.indptr)
    indptr = np.zeros(n_lines + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    X = sp.csr_matrix((X.data, X.indices, indptr), shape=(n_lines, X.shape[1]))
    full = [()] * n_lines
    for i, t in zip(np.flatnonzero(~blank), labels):
        full[i] = t
    return X, full


def iter_xc_blocks(f, block_size=10_000, *, dtype=np.float32, multilabel=True,
                   offset=0, length=-1, verbose=0):
    """Read an Extreme Classification Repository file ``block_size`` rows at a time.

    The format: a header line ``n_rows n_features n_labels``, then one line
    per row, ``l1,l2,... f:v f:v ...``, label and feature indices zero-based
    (the Repository's README; what ``pyxclib`` reads and writes). A row
    without labels starts with a space; a blank line is a row without labels
    or features. The rest of a line after ``#`` is ignored, and lines holding
    only a comment are not rows. Apart from the header, the rows are what
    ``load_svmlight_file(..., multilabel=True, zero_based=True,
    n_features=n_features)`` reads.

    Parameters
    ----------
    f : str or path-like
        The file; ``.gz`` and ``.bz2`` files are decompressed on the fly.
    block_size : int, default=10_000
        Rows per block (the last one may be shorter).
    dtype : numpy dtype, default=np.float32
        Type of the feature values.
    multilabel : bool, default=True
        If True, ``y`` is an indicator matrix of all ``n_labels`` labels. If
        False, every row must have exactly one label and ``y`` is the vector
        of labels (a multiclass problem).
    offset, length : int, default=0 and -1
        Read only the rows whose lines start in the byte range
        ``[offset, offset + length)`` (to the end if ``length <= 0``); the
        header is always read for the shape. Consecutive ranges read every
        row once.
    verbose : int, default=0
        If positive, print a line per block (rows, non-zeros, bytes read,
        elapsed time).

    Yields
    ------
    X : sparse matrix of shape (n_rows_block, n_features)
        CSR with sorted indices.
    y : sparse matrix of shape (n_rows_block, n_labels), or ndarray of \
            shape (n_rows_block,)
        A CSR indicator (int32) if ``multilabel``, else int64 labels.

    Raises
    ------
    ValueError
        On a bad header, a line the parser rejects, a label out of
        ``[0, n_labels)``, a row without exactly one label when
        ``multilabel=False`` (each naming the file and line), or, when the
        whole file is read, a number of rows other than the header's.

    Examples
    --------
    >>> from sklearn_lsh.io import iter_xc_blocks  # doctest: +SKIP
    >>> for X, Y in iter_xc_blocks("train.txt", 50_000, verbose=1):
    ...     clf.partial_fit(X, Y, classes=np.arange(Y.shape[1]))
    """
    _check_block_size(block_size)
    _check_range(f, offset, length)
    name = os.fspath(f)
    progress = _Progress("iter_xc_blocks", verbose, _range_total(f, offset, length))
    with _open(f) as fh:
        (n_rows, n_features, n_labels), header_end = _read_header(fh, name)
        reader = _LineReader(fh, name, offset, length, start=header_end)
        if reader.exact_lines:
            reader.lineno = 1  # the header
        kwargs = dict(n_features=n_features, dtype=dtype, multilabel=True,
                      zero_based=True)
        for index in itertools.count():
            lines, linenos = reader.read(block_size)
            if not lines:
                break
            kept = [(line, no) for line, no in zip(lines, linenos)
                    if not line.lstrip().startswith(b"#")]
            if not kept:
                continue
            lines, linenos = (list(t) for t in zip(*kept))
            blank = np.fromiter((not line.strip() for line in lines), dtype=bool,
                                count=len(lines))
            if blank.all():
                X = sp.csr_matrix((0, n_features), dtype=dtype)
                labels = []
            else:
                X, labels = _parse(lines, linenos, reader.where, **kwargs)
            X, labels = _with_empty_rows(X, labels, blank, len(lines))
            if multilabel:
                y = _labels_to_indicator(labels, n_labels, linenos, reader.where)
            else:
                lengths = np.fromiter((len(t) for t in labels), dtype=np.int64,
                                      count=len(labels))
                if (lengths != 1).any():
                    row = int(np.flatnonzero(lengths != 1)[0])
                    raise ValueError(
                        f"{reader.where(linenos[row])}: {lengths[row]} labels; "
                        "multilabel=False needs exactly one label per row.")
                y = _labels_to_indicator(labels, n_labels, linenos,
                                         reader.where).indices.astype(np.int64)
            progress.block(index, X.shape[0], X.nnz, reader.pos)
            yield X, y
    if offset == 0 and length <= 0 and progress.rows != n_rows:
        raise ValueError(f"{name}: the header says {n_rows} rows; the file has "
                         f"{progress.rows}.")


def dump_xc_file(X, y, f, *, n_labels=None, header=True, n_rows=None):
    """Write rows in the Extreme Classification Repository's text format.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Feature values (zeros are not written).
    y : array-like of shape (n_samples,) or {array-like, sparse matrix} of \
            shape (n_samples, n_labels)
        Labels: a vector of int labels (one per row) or an indicator matrix.
    f : str, path-like or binary file object
        Where to write. A file object is written at its position, so a large
        file can be written block by block: the first call with
        ``header=True`` and ``n_rows`` the total, the next ones with
        ``header=False``.
    n_labels : int, default=None
        Number of labels in the header; None takes ``y.shape[1]`` for an
        indicator matrix, ``max(y) + 1`` for a vector.
    header : bool, default=True
        Whether to write the header line first.
    n_rows : int, default=None
        Rows stated in the header; None means ``X.shape[0]``.
    """
    X = sp.csr_matrix(X)
    if sp.issparse(y) or np.ndim(y) == 2:
        Y = sp.csr_matrix(y)
        n_labels = Y.shape[1] if n_labels is None else n_labels
    else:
        y = np.asarray(y)
        if not np.issubdtype(y.dtype, np.integer) or (y.size and y.min() < 0):
            raise ValueError("y must hold non-negative int labels.")
        if n_labels is None:
            n_labels = int(y.max()) + 1 if y.size else 0
        Y = sp.csr_matrix((np.ones(y.size, dtype=np.int32), y,
                           np.arange(y.size + 1)), shape=(y.size, n_labels))
    if Y.shape[0] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but y has {Y.shape[0]}.")
    own = not hasattr(f, "write")
    fh = open(f, "wb") if own else f
    try:
        if header:
            rows = X.shape[0] if n_rows is None else n_rows
            fh.write(f"{rows} {X.shape[1]} {n_labels}\n".encode())
        if X.shape[0]:
            dump_svmlight_file(X, Y, fh, zero_based=True, multilabel=True)
    finally:
        if own:
            fh.close()
