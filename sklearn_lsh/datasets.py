"""Datasets for wide-output learning, all available offline.

Real data comes from Debian packages that carry it (nothing is downloaded);
the rest is generated from a seed:

- :func:`load_fashion_mnist`: Fashion-MNIST (Debian ``dataset-fashion-mnist``).
- :func:`load_wordnet_hypernyms`: WordNet 3.0 noun glosses -> their hypernym
  synset, a task with about 17,000 classes (Debian ``wordnet-base``).
- :func:`make_extreme_classification`: sparse synthetic data at the shape of
  SLIDE's Amazon-670K benchmark, with a learnable structure.

Conventions, as in :mod:`sklearn.datasets`: loaders return a
:class:`~sklearn.utils.Bunch`, or plain arrays with ``return_X_y=True``. A
loader that returns one split holds it in ``data`` and ``target``
(``return_X_y=True`` gives ``(X, y)``); a loader that returns a train/test
split holds ``X_train``, ``X_test``, ``y_train`` and ``y_test``
(``return_X_y=True`` gives them in that order, the order of
:func:`~sklearn.model_selection.train_test_split`). Generators return arrays.
Sparse inputs are CSR with float32 values and int32 indices; a multilabel
target is a CSR indicator matrix.

When a package's data is absent, the loaders raise
:class:`DatasetNotFoundError` (a :class:`FileNotFoundError`) naming the
package to install; every loader also takes an explicit ``path``.
"""

import gzip
import math
import numbers
import shutil
import subprocess
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import normalize
from sklearn.utils import Bunch

__all__ = [
    "DatasetNotFoundError",
    "load_fashion_mnist",
    "load_wordnet_hypernyms",
    "make_extreme_classification",
    "unseen_class_share",
]


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are not where the loader looked.

    The message says which package provides the data and that a ``path`` can
    be passed instead.

    Parameters
    ----------
    message : str
        The error message.
    package : str, default=None
        The Debian package that provides the data.
    """

    def __init__(self, message, package=None):
        super().__init__(message)
        self.package = package


def _dpkg_listing(package):
    """Paths installed by a Debian package, or [] when dpkg cannot tell."""
    dpkg = shutil.which("dpkg")
    if dpkg is None:
        return []
    try:
        out = subprocess.run(
            [dpkg, "-L", package], capture_output=True, text=True, timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    if out.returncode != 0:
        return []
    return [Path(line) for line in out.stdout.splitlines() if line.strip()]


def _not_found(what, package, searched, hint):
    places = ", ".join(str(p) for p in searched) or "(nowhere)"
    return DatasetNotFoundError(
        f"{what} not found (looked in: {places}). It is provided by the Debian "
        f"package '{package}': install it with `apt-get install {package}` (as "
        f"root), or pass path= {hint}.",
        package=package,
    )


def _check_choice(name, value, options):
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {list(options)}; got {value!r}.")


def _check_int(name, value, low):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise ValueError(f"{name} must be an int; got {value!r}.")
    if value < low:
        raise ValueError(f"{name} must be >= {low}; got {value}.")
    return int(value)


def _check_real(name, value, low, high=None, high_open=False):
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise ValueError(f"{name} must be a number; got {value!r}.")
    value = float(value)
    too_high = high is not None and (value >= high if high_open else value > high)
    if not math.isfinite(value) or value < low or too_high:
        bound = "" if high is None else f" and {'<' if high_open else '<='} {high}"
        raise ValueError(f"{name} must be >= {low}{bound}; got {value}.")
    return value


def _as_csr32(X):
    """CSR with float32 values and int32 indices (when they fit)."""
    X = sp.csr_matrix(X, dtype=np.float32)
    if X.nnz < np.iinfo(np.int32).max:
        X.indices = X.indices.astype(np.int32, copy=False)
        X.indptr = X.indptr.astype(np.int32, copy=False)
    return X


# --------------------------------------------------------------------------
# Fashion-MNIST
# --------------------------------------------------------------------------

_FASHION_PACKAGE = "dataset-fashion-mnist"
_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
_FASHION_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
# IDX type codes (third byte of the magic number); multi-byte types are
# big-endian.
_IDX_DTYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4",
               0x0E: ">f8"}


def _read_idx(filename):
    """Read one IDX file (gzip-compressed if its name ends in .gz)."""
    filename = Path(filename)
    opener = gzip.open if filename.suffix == ".gz" else open
    with opener(filename, "rb") as f:
        buf = f.read()
    if len(buf) < 4 or buf[0] != 0 or buf[1] != 0 or buf[2] not in _IDX_DTYPES:
        raise ValueError(
            f"{filename} is not an IDX file: bad magic number {buf[:4].hex()!r} "
            "(expected 00 00, a type code and the number of dimensions)."
        )
    ndim = buf[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(buf) < header:
        raise ValueError(f"{filename}: truncated IDX header ({ndim} dimensions).")
    dims = tuple(int(d) for d in np.frombuffer(buf, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[buf[2]])
    count = math.prod(dims)
    if len(buf) - header != count * dtype.itemsize:
        raise ValueError(
            f"{filename}: the header gives shape {dims} ({count * dtype.itemsize} "
            f"bytes of data) but {len(buf) - header} bytes follow it."
        )
    return np.frombuffer(buf, dtype=dtype, count=count, offset=header).reshape(dims)


def _fashion_dir(path):
    needed = [name for pair in _FASHION_FILES.values() for name in pair]

    def complete(d):
        return all((d / (n + ".gz")).is_file() or (d / n).is_file() for n in needed)

    if path is not None:
        return Path(path), [Path(path)]
    searched = [_FASHION_DIR]
    if complete(_FASHION_DIR):
        return _FASHION_DIR, searched
    for p in _dpkg_listing(_FASHION_PACKAGE):
        if p.name == needed[0] + ".gz":
            searched.append(p.parent)
            return p.parent, searched
    return None, searched


def _fashion_split(directory, kind, dtype, searched):
    arrays = []
    files = []
    for base in _FASHION_FILES[kind]:
        for name in (base + ".gz", base):
            if (directory / name).is_file():
                files.append(directory / name)
                arrays.append(_read_idx(directory / name))
                break
        else:
            raise _not_found(
                f"Fashion-MNIST file {base}.gz", _FASHION_PACKAGE, searched,
                "the directory holding the four IDX files "
                "({train,t10k}-{images-idx3,labels-idx1}-ubyte.gz)",
            )
    images, labels = arrays
    if images.ndim != 3 or labels.ndim != 1:
        raise ValueError(
            f"{files[0]} must hold a 3-d array of images and {files[1]} a 1-d "
            f"array of labels; got shapes {images.shape} and {labels.shape}."
        )
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{files[0]} has {images.shape[0]} images but {files[1]} has "
            f"{labels.shape[0]} labels."
        )
    X = images.reshape(images.shape[0], -1).astype(dtype)
    X /= 255
    return X, labels.astype(np.int64), [str(f) for f in files]


def load_fashion_mnist(path=None, *, kind="train", dtype=np.float32,
                       return_X_y=False):
    """Load Fashion-MNIST from its IDX files.

    Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017; MIT licence): 28x28
    grey-level images of clothing in 10 classes, 60,000 for training and
    10,000 for testing. Nothing is downloaded: the four IDX files come from the
    Debian package ``dataset-fashion-mnist`` or from ``path``.

    Parameters
    ----------
    path : str or path-like, default=None
        Directory holding ``train-images-idx3-ubyte.gz``,
        ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz`` and
        ``t10k-labels-idx1-ubyte.gz`` (uncompressed files without ``.gz``
        also work). If None, the files of the Debian package
        ``dataset-fashion-mnist`` are used (``/usr/share/datasets/fashion-mnist``,
        or wherever ``dpkg -L`` says they are).
    kind : {'train', 'test', 'both'}, default='train'
        Which split to load; 'both' loads the standard train/test split.
    dtype : floating dtype, default=np.float32
        Dtype of the pixel values, which are scaled to ``[0, 1]``.
    return_X_y : bool, default=False
        If True, return arrays instead of a Bunch: ``(X, y)``, or
        ``(X_train, X_test, y_train, y_test)`` for ``kind='both'``.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        For ``kind='train'`` or ``'test'``:

        data : ndarray of shape (n_samples, 784)
            Pixel values in ``[0, 1]``, one flattened image per row.
        target : ndarray of shape (n_samples,), dtype int64
            Class labels 0-9.

        For ``kind='both'``: ``X_train`` (60000, 784), ``X_test``
        (10000, 784), ``y_train`` and ``y_test`` instead. Always also:

        target_names : list of str
            The 10 class names ('T-shirt/top', 'Trouser', ...).
        filenames : list of str
            The IDX files read.
        DESCR : str
            A description of the dataset.
    (X, y) or (X_train, X_test, y_train, y_test) : tuple
        If ``return_X_y`` is True.

    Raises
    ------
    DatasetNotFoundError
        If the files are missing (a subclass of FileNotFoundError whose
        message says to ``apt-get install dataset-fashion-mnist`` or to pass
        ``path``).
    ValueError
        If a file is not a well-formed IDX file.

    Examples
    --------
    >>> from sklearn_lsh.datasets import load_fashion_mnist
    >>> X, y = load_fashion_mnist(kind="test", return_X_y=True)  # doctest: +SKIP
    >>> X.shape, X.dtype, y[:5]  # doctest: +SKIP
    ((10000, 784), dtype('float32'), array([9, 2, 1, 1, 6]))
    """
    _check_choice("kind", kind, ("train", "test", "both"))
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.floating):
        raise ValueError(f"dtype must be a floating dtype; got {dtype}.")
    directory, searched = _fashion_dir(path)
    if directory is None:
        raise _not_found(
            "Fashion-MNIST", _FASHION_PACKAGE, searched,
            "the directory holding the four IDX files "
            "({train,t10k}-{images-idx3,labels-idx1}-ubyte.gz)",
        )
    kinds = ("train", "test") if kind == "both" else (kind,)
    splits = {k: _fashion_split(directory, k, dtype, searched) for k in kinds}
    filenames = [f for k in kinds for f in splits[k][2]]
    descr = (
        "Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017; MIT licence): 28x28 "
        "grey-level images of Zalando articles in 10 classes, 60,000 train and "
        f"10,000 test. Read from {directory}."
    )
    if kind == "both":
        (X_train, y_train, _), (X_test, y_test, _) = splits["train"], splits["test"]
        if return_X_y:
            return X_train, X_test, y_train, y_test
        return Bunch(X_train=X_train, X_test=X_test, y_train=y_train, y_test=y_test,
                     target_names=list(FASHION_MNIST_CLASSES), filenames=filenames,
                     DESCR=descr)
    X, y, _ = splits[kind]
    if return_X_y:
        return X, y
    return Bunch(data=X, target=y, target_names=list(FASHION_MNIST_CLASSES),
                 filenames=filenames, DESCR=descr)


# --------------------------------------------------------------------------
# WordNet hypernyms
# --------------------------------------------------------------------------

# WordNet 3.0 is Copyright 2006 by Princeton University and distributed under
# the WordNet licence (permissive, BSD-like: use, copy, modify and distribute,
# keeping its copyright notice). We do not ship any WordNet data: it is read
# from the user's Debian ``wordnet-base`` package (or a path they give), whose
# data files carry the licence in their header lines.

_WORDNET_PACKAGE = "wordnet-base"
_WORDNET_FILE = Path("/usr/share/wordnet/data.noun")
_HYPERNYM_SYMBOLS = ("@", "@i")


def _wordnet_file(path):
    if path is not None:
        path = Path(path)
        candidate = path / "data.noun" if path.is_dir() else path
        if not candidate.is_file():
            raise _not_found(
                "WordNet noun database (data.noun)", _WORDNET_PACKAGE, [path],
                "the WordNet data.noun file or the directory holding it",
            )
        return candidate
    searched = [_WORDNET_FILE]
    if _WORDNET_FILE.is_file():
        return _WORDNET_FILE
    for p in _dpkg_listing(_WORDNET_PACKAGE):
        if p.name == "data.noun":
            searched.append(p)
            if p.is_file():
                return p
    raise _not_found(
        "WordNet noun database (data.noun)", _WORDNET_PACKAGE, searched,
        "the WordNet data.noun file or the directory holding it",
    )


def _parse_data_noun(filename):
    """Synsets of a WordNet data.noun file.

    Returns offsets (list of int), first lemmas, glosses and hypernym offsets
    (a list per synset, in pointer order).
    """
    offsets, lemmas, glosses, hypernyms = [], [], [], []
    with open(filename, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            # The licence header: lines starting with two spaces.
            if line.startswith("  ") or not line.strip():
                continue
            head, _, gloss = line.partition(" | ")
            tok = head.split()
            try:
                offset = int(tok[0])
                w_cnt = int(tok[3], 16)  # hexadecimal
                i = 4 + 2 * w_cnt
                p_cnt = int(tok[i])  # 3-digit decimal
                pointers = tok[i + 1: i + 1 + 4 * p_cnt]
                if len(pointers) != 4 * p_cnt:
                    raise IndexError
                # Each pointer: symbol, target offset, pos, source/target.
                hyper = [int(pointers[j + 1]) for j in range(0, 4 * p_cnt, 4)
                         if pointers[j] in _HYPERNYM_SYMBOLS]
            except (IndexError, ValueError) as exc:
                raise ValueError(
                    f"{filename}, line {lineno}: not a WordNet synset line "
                    "('offset lex_filenum ss_type w_cnt word lex_id ... p_cnt "
                    "[ptr offset pos src/tgt]... | gloss')."
                ) from exc
            offsets.append(offset)
            lemmas.append(tok[4])
            glosses.append(gloss.strip())
            hypernyms.append(hyper)
    return offsets, lemmas, glosses, hypernyms


def _ancestors(parents):
    """Transitive closure of a parent map {node: [parents]} (a DAG)."""
    memo = {}
    for start in parents:
        if start in memo:
            continue
        stack = [(start, False)]
        on_path = set()
        while stack:
            node, expanded = stack.pop()
            if node in memo:
                continue
            if expanded:
                acc = set()
                for p in parents.get(node, ()):
                    acc.add(p)
                    acc |= memo.get(p, frozenset())
                memo[node] = frozenset(acc)
                on_path.discard(node)
            else:
                on_path.add(node)
                stack.append((node, True))
                stack.extend((p, False) for p in parents.get(node, ())
                             if p not in memo and p not in on_path)
    return memo


def unseen_class_share(y_train, y_test):
    """How much of a test set has classes absent from the training set.

    A model cannot predict a class it never saw, so this bounds its test
    accuracy (with a long-tailed label distribution it is far from zero).

    Parameters
    ----------
    y_train : array-like of shape (n_train,) or sparse matrix of shape \
            (n_train, n_labels)
        Training targets: class labels, or a label indicator matrix.
    y_test : array-like of shape (n_test,) or sparse matrix of shape \
            (n_test, n_labels)
        Test targets, of the same kind as ``y_train``.

    Returns
    -------
    class_share : float
        Among the distinct classes present in ``y_test``, the share that never
        occurs in ``y_train``.
    target_share : float
        The share of test targets whose class never occurs in ``y_train``:
        of test samples for class labels, of test (sample, label) positives
        for an indicator matrix.

    Examples
    --------
    >>> from sklearn_lsh.datasets import unseen_class_share
    >>> unseen_class_share([0, 0, 1], [0, 2, 2, 3])
    (0.6666666666666666, 0.75)
    """
    multilabel = sp.issparse(y_train) or np.ndim(y_train) == 2
    if multilabel:
        Y_train = sp.csr_matrix(y_train)
        Y_test = sp.csr_matrix(y_test)
        if Y_train.shape[1] != Y_test.shape[1]:
            raise ValueError(
                f"y_train has {Y_train.shape[1]} labels but y_test has "
                f"{Y_test.shape[1]}."
            )
        seen = np.asarray((Y_train != 0).sum(axis=0)).ravel() > 0
        test_counts = np.asarray((Y_test != 0).sum(axis=0)).ravel()
        present = test_counts > 0
        if not present.any():
            raise ValueError("y_test has no positive label.")
        unseen = present & ~seen
        return (float(unseen.sum() / present.sum()),
                float(test_counts[unseen].sum() / test_counts.sum()))
    y_train = np.asarray(y_train).ravel()
    y_test = np.asarray(y_test).ravel()
    if y_test.size == 0:
        raise ValueError("y_test is empty.")
    test_classes = np.unique(y_test)
    return (float(np.mean(~np.isin(test_classes, y_train))),
            float(np.mean(~np.isin(y_test, y_train))))


def load_wordnet_hypernyms(path=None, *, min_df=1, multilabel=False,
                           random_state=0, test_size=0.2, return_X_y=False):
    """Load the WordNet noun-hypernym task: a gloss -> its hypernym synset.

    A wide-output text classification task built from the WordNet 3.0 noun
    database (Debian package ``wordnet-base``; WordNet licence, data not
    shipped with sklearn-lsh). Each noun synset with a hypernym is a sample
    (82,114 of the 82,115 synsets; the root 'entity' has none). Its input is
    the bag of words of its gloss (the definition and examples after ``|``)
    and its target is its first hypernym synset (first pointer ``@`` or
    ``@i``), giving 16,897 classes with a long tail (6,162 of them have one
    sample). With ``multilabel=True`` the targets are all its hypernym
    ancestors (transitive closure over ``@`` and ``@i``): 17,157 labels, about
    9 per sample.

    The samples are shuffled and split with ``random_state`` before the
    vocabulary is fitted, on the training glosses only (test words outside it
    are dropped). Classes are encoded on the whole dataset, so a test class
    missing from the training split still has an index; see
    ``unseen_test_class_share``.

    Parameters
    ----------
    path : str or path-like, default=None
        The WordNet ``data.noun`` file, or a directory holding it. If None,
        the file of the Debian package ``wordnet-base`` is used
        (``/usr/share/wordnet/data.noun``, or wherever ``dpkg -L`` says it is).
    min_df : int or float, default=1
        Passed to :class:`~sklearn.feature_extraction.text.CountVectorizer`:
        words in fewer training glosses (or a smaller share of them) are
        dropped from the vocabulary.
    multilabel : bool, default=False
        If False, the target is the first hypernym (one class per sample);
        if True, the set of all hypernym ancestors (an indicator matrix).
    random_state : int, RandomState instance or None, default=0
        Seed of the shuffle before the split.
    test_size : float or int, default=0.2
        Share (float) or number (int) of samples in the test split, as in
        :func:`~sklearn.model_selection.train_test_split`.
    return_X_y : bool, default=False
        If True, return ``(X_train, X_test, y_train, y_test)`` instead of a
        Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        X_train, X_test : sparse matrix of shape (n_train, n_words), (n_test, n_words)
            Word counts of the glosses, CSR with float32 values and int32
            indices.
        y_train, y_test : ndarray of shape (n_train,), (n_test,) or \
sparse matrix of shape (n_train, n_classes), (n_test, n_classes)
            Class indices into ``classes`` (int64), or with
            ``multilabel=True`` a CSR indicator matrix (int32 values).
        classes : ndarray of shape (n_classes,)
            Synset offset (in ``data.noun``) of each class.
        class_names : ndarray of shape (n_classes,)
            First lemma of each class synset (not unique: 'bank' names several
            synsets).
        feature_names : ndarray of shape (n_words,)
            The vocabulary.
        vectorizer : CountVectorizer
            The vectorizer fitted on the training glosses; its ``transform``
            maps new text to the same features.
        synsets_train, synsets_test : ndarray of shape (n_train,), (n_test,)
            Synset offset of each sample.
        unseen_test_class_share : float
            Share of the distinct test classes that never occur in training.
        unseen_test_target_share : float
            Share of test samples (of test positives if multilabel) whose
            class never occurs in training: no model can get them right.
        filename : str
            The ``data.noun`` file read.
        DESCR : str
            A description of the task.
    (X_train, X_test, y_train, y_test) : tuple
        If ``return_X_y`` is True.

    Raises
    ------
    DatasetNotFoundError
        If ``data.noun`` is missing (a subclass of FileNotFoundError whose
        message says to ``apt-get install wordnet-base`` or to pass ``path``).
    ValueError
        If a synset line cannot be parsed.

    See Also
    --------
    unseen_class_share : The unseen-class shares of any split.
    sklearn_lsh.metrics.precision_at_k : P@k of ranked predictions.

    Examples
    --------
    >>> from sklearn_lsh.datasets import load_wordnet_hypernyms
    >>> data = load_wordnet_hypernyms()  # doctest: +SKIP
    >>> data.X_train.shape, data.classes.shape  # doctest: +SKIP
    ((65691, 39217), (16897,))
    """
    filename = _wordnet_file(path)
    offsets, lemmas, glosses, hypernyms = _parse_data_noun(filename)
    lemma_of = dict(zip(offsets, lemmas))
    samples = [i for i, h in enumerate(hypernyms) if h]
    if len(samples) < 2:
        raise ValueError(f"{filename} has fewer than 2 synsets with a hypernym.")
    sample_offsets = np.array([offsets[i] for i in samples], dtype=np.int64)
    if multilabel:
        closure = _ancestors(dict(zip(offsets, hypernyms)))
        label_sets = [sorted(closure[offsets[i]]) for i in samples]
        classes = np.unique(np.fromiter(
            (o for s in label_sets for o in s), dtype=np.int64))
        indptr = np.zeros(len(samples) + 1, dtype=np.int64)
        np.cumsum([len(s) for s in label_sets], out=indptr[1:])
        indices = np.searchsorted(classes, np.fromiter(
            (o for s in label_sets for o in s), dtype=np.int64, count=indptr[-1]))
        y = sp.csr_matrix(
            (np.ones(indptr[-1], dtype=np.int32), indices.astype(np.int32),
             indptr.astype(np.int32)), shape=(len(samples), classes.size))
    else:
        first = np.array([hypernyms[i][0] for i in samples], dtype=np.int64)
        classes, y = np.unique(first, return_inverse=True)
        y = y.astype(np.int64)

    idx_train, idx_test = train_test_split(
        np.arange(len(samples)), test_size=test_size, random_state=random_state,
        shuffle=True)
    vectorizer = CountVectorizer(min_df=min_df, dtype=np.float32)
    X_train = _as_csr32(vectorizer.fit_transform(
        [glosses[samples[i]] for i in idx_train]))
    X_test = _as_csr32(vectorizer.transform([glosses[samples[i]] for i in idx_test]))
    y_train, y_test = y[idx_train], y[idx_test]
    class_share, target_share = unseen_class_share(y_train, y_test)
    if return_X_y:
        return X_train, X_test, y_train, y_test
    class_names = np.array([lemma_of.get(int(c), "") for c in classes], dtype=object)
    descr = (
        "WordNet 3.0 noun hypernyms (WordNet licence, Copyright 2006 Princeton "
        f"University; read from {filename}, not shipped with sklearn-lsh). Input: "
        "bag of words of a noun synset's gloss; target: "
        + ("all its hypernym ancestors" if multilabel else "its first hypernym")
        + f". {len(samples)} samples, {classes.size} classes, "
        f"{X_train.shape[1]} words fitted on {len(idx_train)} training glosses; "
        f"{len(idx_test)} test samples, {class_share:.1%} of the test classes "
        "unseen in training."
    )
    return Bunch(
        X_train=X_train, X_test=X_test, y_train=y_train, y_test=y_test,
        classes=classes, class_names=class_names,
        feature_names=vectorizer.get_feature_names_out(), vectorizer=vectorizer,
        synsets_train=sample_offsets[idx_train],
        synsets_test=sample_offsets[idx_test],
        unseen_test_class_share=class_share,
        unseen_test_target_share=target_share,
        filename=str(filename), DESCR=descr,
    )


# --------------------------------------------------------------------------
# Synthetic extreme classification
# --------------------------------------------------------------------------

def _splitmix64(z):
    """The splitmix64 finaliser, element-wise on a uint64 array (wraps)."""
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z ^= z >> np.uint64(30)
    z *= np.uint64(0xBF58476D1CE4E5B9)
    z ^= z >> np.uint64(27)
    z *= np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return z


def _prototype_features(key, labels, slots, prototype_size, n_features):
    """Feature of slot ``slots`` in the prototype of ``labels``.

    A hash of (seed key, label, slot): prototypes are never stored, and a
    label's prototype does not depend on how many samples are drawn.
    """
    z = labels.astype(np.uint64) * np.uint64(prototype_size)
    z += slots.astype(np.uint64)
    z += key
    return (_splitmix64(z) % np.uint64(n_features)).astype(np.int32)


def _generator(random_state):
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(np.iinfo(np.int32).max))
    if random_state is None or (isinstance(random_state, numbers.Integral)
                                and not isinstance(random_state, bool)):
        return np.random.default_rng(random_state)
    raise ValueError(
        "random_state must be None, an int, a numpy Generator or RandomState; "
        f"got {random_state!r}."
    )


def make_extreme_classification(n_samples=100, n_features=135_909,
                                n_classes=670_091, n_labels=1, nnz_per_row=75, *,
                                prototype_size=None, noise=0.2, power_law=1.0,
                                return_prototypes=False, random_state=None):
    """Generate sparse data for extreme (very many classes) classification.

    The default shape is SLIDE's Amazon-670K benchmark: 135,909 sparse
    features with about 75 non-zeros per row and 670,091 classes whose
    frequencies follow a power law (use ``n_labels=5.45`` for its multilabel
    form). The data is learnable:

    - each class owns a *prototype*, a set of ``prototype_size`` features
      (drawn by hashing, so it is never stored and does not depend on
      ``n_samples``);
    - class frequencies follow a power law: the class of popularity rank ``r``
      (0-based) is drawn with probability proportional to
      ``(r + 1) ** -power_law``; ranks are assigned to class ids at random;
    - a sample draws its classes (one, or ``1 + Poisson(n_labels - 1)``
      distinct ones), then takes ``round((1 - noise) * nnz_per_row)`` features
      from its classes' prototypes (an equal share from each, a random subset
      of each prototype) and ``nnz_per_row`` minus that many uniformly random
      noise features. Values are uniform in ``[0.1, 1)`` before each row is
      scaled to unit L2 norm.

    Parameters
    ----------
    n_samples : int, default=100
        Number of rows.
    n_features : int, default=135_909
        Number of features.
    n_classes : int, default=670_091
        Number of classes.
    n_labels : float, default=1
        Mean number of labels per row. 1 gives a multiclass problem (``y`` is
        a vector of labels); above 1, each row has ``1 + Poisson(n_labels - 1)``
        distinct labels (at most ``n_classes`` and the number of prototype
        features per row) and ``y`` is an indicator matrix.
    nnz_per_row : int, default=75
        Number of features drawn per row. A row has this many non-zeros
        unless the same feature is drawn twice (rare when ``n_features`` is
        large; duplicates are summed).
    prototype_size : int, default=None
        Number of features each class owns; None means ``nnz_per_row``.
    noise : float, default=0.2
        Share of each row's features drawn at random rather than from its
        classes' prototypes, in ``[0, 1)``.
    power_law : float, default=1.0
        Exponent of the class-frequency power law (0 gives uniform classes).
    return_prototypes : bool, default=False
        If True, also return the prototypes and the class probabilities.
    random_state : int, numpy Generator or RandomState, or None, default=None
        Seed of the generator; an int gives reproducible data.

    Returns
    -------
    X : sparse matrix of shape (n_samples, n_features)
        CSR, float32 values, int32 indices (int64 if ``n_samples *
        nnz_per_row`` exceeds the int32 range), sorted indices.
    y : ndarray of shape (n_samples,) or sparse matrix of shape \
            (n_samples, n_classes)
        Class labels (int64) if ``n_labels == 1``, else a CSR indicator
        matrix (int32 values and indices).
    prototypes : sparse matrix of shape (n_classes, n_features)
        Only if ``return_prototypes``: the binary (float32) indicator of each
        class's prototype features. It has ``n_classes * prototype_size``
        entries (about 400 MB at the default shape).
    class_prior : ndarray of shape (n_classes,)
        Only if ``return_prototypes``: the probability of drawing each class.

    See Also
    --------
    sklearn.datasets.make_multilabel_classification : Dense multilabel data
        with a few classes.

    Notes
    -----
    The work and memory are linear in ``n_samples * nnz_per_row`` plus
    ``n_classes`` (no per-class data besides the frequency table):
    100,000 rows at the default shape take a few seconds and a few hundred MB.

    Examples
    --------
    >>> from sklearn_lsh.datasets import make_extreme_classification
    >>> X, y = make_extreme_classification(1000, random_state=0)
    >>> X.shape, X.dtype, X.indices.dtype, y.shape
    ((1000, 135909), dtype('float32'), dtype('int32'), (1000,))
    """
    n_samples = _check_int("n_samples", n_samples, 1)
    n_features = _check_int("n_features", n_features, 1)
    n_classes = _check_int("n_classes", n_classes, 1)
    n_labels = _check_real("n_labels", n_labels, 1)
    nnz_per_row = _check_int("nnz_per_row", nnz_per_row, 1)
    if prototype_size is None:
        prototype_size = nnz_per_row
    prototype_size = _check_int("prototype_size", prototype_size, 1)
    noise = _check_real("noise", noise, 0, 1, high_open=True)
    power_law = _check_real("power_law", power_law, 0)
    rng = _generator(random_state)

    # Drawn first, so that they do not depend on n_samples.
    key = rng.integers(0, np.iinfo(np.int64).max, dtype=np.int64).astype(np.uint64)
    rank_to_class = rng.permutation(n_classes)
    weights = np.arange(1, n_classes + 1, dtype=np.float64) ** -power_law
    cdf = np.cumsum(weights)

    def draw_classes(size):
        ranks = np.searchsorted(cdf, rng.random(size) * cdf[-1], side="right")
        return rank_to_class[np.minimum(ranks, n_classes - 1)]

    n_signal = max(1, round((1 - noise) * nnz_per_row))
    n_noise = nnz_per_row - n_signal
    multilabel = n_labels != 1
    if multilabel:
        counts = 1 + rng.poisson(n_labels - 1, n_samples)
        np.minimum(counts, min(n_classes, n_signal), out=counts)
    else:
        counts = np.ones(n_samples, dtype=np.int64)
    rows = np.repeat(np.arange(n_samples, dtype=np.int64), counts)
    labels = draw_classes(rows.size)
    if multilabel:
        # Redraw the classes drawn twice in a row; give up after a few rounds
        # (possible only with few classes) and drop what is left.
        for _ in range(32):
            pair_keys = rows * n_classes + labels
            order = np.argsort(pair_keys, kind="stable")
            sorted_keys = pair_keys[order]
            dup = order[1:][sorted_keys[1:] == sorted_keys[:-1]]
            if dup.size == 0:
                break
            labels[dup] = draw_classes(dup.size)
        pair_keys = rows * n_classes + labels
        pair_keys, first = np.unique(pair_keys, return_index=True)
        rows = rows[first]
        labels = labels[first]
        counts = np.bincount(rows, minlength=n_samples)
    row_ptr = np.zeros(n_samples + 1, dtype=np.int64)
    np.cumsum(counts, out=row_ptr[1:])

    # Each (row, class) pair reads its prototype along a random cyclic
    # progression start, start + step, ... (step coprime with the prototype
    # size), so the features it takes are distinct.
    steps = np.array([s for s in range(1, max(prototype_size, 2))
                      if math.gcd(s, prototype_size) == 1], dtype=np.int64)
    starts = rng.integers(0, prototype_size, size=labels.size)
    strides = steps[rng.integers(0, steps.size, size=labels.size)]
    noise_features = rng.integers(0, n_features, size=(n_samples, n_noise),
                                  dtype=np.int32)
    values = rng.random((n_samples, nnz_per_row), dtype=np.float32)
    values *= 0.9
    values += 0.1

    indices = np.empty((n_samples, nnz_per_row), dtype=np.int32)
    indices[:, n_signal:] = noise_features
    del noise_features
    j = np.arange(n_signal, dtype=np.int64)[None, :]
    chunk = max(1, 2**20 // n_signal)
    for lo in range(0, n_samples, chunk):
        hi = min(lo + chunk, n_samples)
        k = counts[lo:hi, None]
        # Slot j of a row goes to its class j * k // n_signal, as the t-th
        # feature taken from that class.
        block = j * k // n_signal
        t = j - (block * n_signal + k - 1) // k
        pair = row_ptr[lo:hi, None] + block
        slots = (starts[pair] + t * strides[pair]) % prototype_size
        indices[lo:hi, :n_signal] = _prototype_features(
            key, labels[pair], slots, prototype_size, n_features)

    nnz = n_samples * nnz_per_row
    index_dtype = np.int32 if nnz <= np.iinfo(np.int32).max else np.int64
    indptr = np.arange(0, nnz + 1, nnz_per_row, dtype=index_dtype)
    X = sp.csr_matrix((values.ravel(), indices.ravel().astype(index_dtype,
                                                              copy=False), indptr),
                      shape=(n_samples, n_features))
    del values, indices
    X.sum_duplicates()
    normalize(X, copy=False)

    if multilabel:
        y = sp.csr_matrix(
            (np.ones(labels.size, dtype=np.int32), labels.astype(np.int32),
             row_ptr.astype(np.int32 if labels.size <= np.iinfo(np.int32).max
                            else np.int64)),
            shape=(n_samples, n_classes))
    else:
        y = labels.astype(np.int64)
    if not return_prototypes:
        return X, y

    class_prior = np.empty(n_classes, dtype=np.float64)
    class_prior[rank_to_class] = weights / cdf[-1]
    proto_classes = np.repeat(np.arange(n_classes, dtype=np.int64), prototype_size)
    proto_slots = np.tile(np.arange(prototype_size, dtype=np.int64), n_classes)
    proto_features = _prototype_features(key, proto_classes, proto_slots,
                                         prototype_size, n_features)
    prototypes = sp.csr_matrix(
        (np.ones(proto_features.size, dtype=np.float32), proto_features,
         np.arange(0, proto_features.size + 1, prototype_size)),
        shape=(n_classes, n_features))
    prototypes.sum_duplicates()
    prototypes.data[:] = 1
    return X, y, prototypes, class_prior
