"""Dataset loaders, the synthetic generator and precision@k."""

import gzip
import time

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.preprocessing import normalize

from sklearn_lsh.datasets import (
    DatasetNotFoundError,
    _parse_data_noun,
    load_fashion_mnist,
    load_wordnet_hypernyms,
    make_extreme_classification,
    unseen_class_share,
)
from sklearn_lsh.metrics import precision_at_k

# --------------------------------------------------------------------------
# make_extreme_classification
# --------------------------------------------------------------------------

SMALL = dict(n_features=5000, n_classes=200, nnz_per_row=40)


def test_extreme_default_shape_is_amazon_670k():
    t0 = time.perf_counter()
    X, y = make_extreme_classification(100_000, random_state=0)
    elapsed = time.perf_counter() - t0
    assert X.shape == (100_000, 135_909)
    assert X.format == "csr" and X.has_canonical_format
    assert X.dtype == np.float32
    assert X.indices.dtype == np.int32 and X.indptr.dtype == np.int32
    assert y.shape == (100_000,) and y.dtype == np.int64
    assert 0 <= y.min() and y.max() < 670_091
    nnz = np.diff(X.indptr)
    assert nnz.max() == 75 and nnz.mean() > 74.5
    # Vectorised: a per-row Python loop would take minutes.
    assert elapsed < 30


def test_extreme_multilabel_shapes_and_label_counts():
    X, Y = make_extreme_classification(5000, n_labels=5.45, random_state=0)
    assert X.shape == (5000, 135_909)
    assert sp.issparse(Y) and Y.format == "csr" and Y.shape == (5000, 670_091)
    assert Y.indices.dtype == np.int32 and Y.has_canonical_format
    assert np.all(Y.data == 1)
    per_row = np.diff(Y.indptr)
    assert per_row.min() >= 1
    assert per_row.mean() == pytest.approx(5.45, abs=0.1)
    nnz = np.diff(X.indptr)
    assert nnz.max() <= 75 and nnz.mean() > 74.5


@pytest.mark.parametrize("n_labels", [1, 3.0])
def test_extreme_rows_are_unit_norm_and_nnz_bounded(n_labels):
    X, _ = make_extreme_classification(2000, n_labels=n_labels, random_state=3,
                                       **SMALL)
    assert np.all(X.data > 0)
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    np.testing.assert_allclose(norms, 1, rtol=1e-5)
    nnz = np.diff(X.indptr)
    assert nnz.max() <= 40
    # Collisions are rare with 5000 features (a few per cent of the rows).
    assert nnz.mean() > 39.5


def test_extreme_deterministic_with_seed():
    a = make_extreme_classification(500, n_labels=2.5, random_state=7, **SMALL)
    b = make_extreme_classification(500, n_labels=2.5, random_state=7, **SMALL)
    c = make_extreme_classification(500, n_labels=2.5, random_state=8, **SMALL)
    for u, v in zip(a, b):
        assert (u != v).nnz == 0
    assert (a[0] != c[0]).nnz > 0
    # A Generator seeded alike gives the same data as the int.
    d = make_extreme_classification(500, n_labels=2.5,
                                    random_state=np.random.default_rng(7), **SMALL)
    assert (a[0] != d[0]).nnz == 0


def test_extreme_prototypes_do_not_depend_on_n_samples():
    *_, P1, prior1 = make_extreme_classification(
        10, random_state=0, return_prototypes=True, **SMALL)
    *_, P2, prior2 = make_extreme_classification(
        1000, random_state=0, return_prototypes=True, **SMALL)
    assert (P1 != P2).nnz == 0
    np.testing.assert_array_equal(prior1, prior2)
    assert P1.shape == (200, 5000) and P1.dtype == np.float32
    assert np.all(P1.data == 1) and np.diff(P1.indptr).max() <= 40


def test_extreme_without_noise_rows_lie_in_their_prototype():
    X, y, P, _ = make_extreme_classification(
        300, noise=0.0, random_state=0, return_prototypes=True, **SMALL)
    for i in range(300):
        assert set(X[i].indices) <= set(P[y[i]].indices)
    # Multilabel: in the union of the row's classes' prototypes.
    X, Y, P, _ = make_extreme_classification(
        300, n_labels=4, noise=0.0, random_state=0, return_prototypes=True,
        **SMALL)
    for i in range(300):
        union = set(P[Y[i].indices].indices)
        assert set(X[i].indices) <= union


def test_extreme_power_law_head_and_tail():
    n, n_classes = 40_000, 1000
    _, y, _, prior = make_extreme_classification(
        n, n_features=2000, n_classes=n_classes, nnz_per_row=10, power_law=1.0,
        random_state=0, return_prototypes=True)
    assert prior.sum() == pytest.approx(1)
    by_rank = np.argsort(-prior, kind="stable")
    harmonic = np.cumsum(1 / np.arange(1, n_classes + 1))
    np.testing.assert_allclose(np.sort(prior)[::-1],
                               1 / np.arange(1, n_classes + 1) / harmonic[-1])
    counts = np.bincount(y, minlength=n_classes)[by_rank]
    # The 10 most frequent classes hold H(10) / H(1000) = 39% of the samples,
    # the 500 rarest (H(1000) - H(500)) / H(1000) = 9%.
    head = counts[:10].sum() / n
    tail = counts[500:].sum() / n
    assert head == pytest.approx(harmonic[9] / harmonic[-1], abs=0.015)
    assert tail == pytest.approx((harmonic[-1] - harmonic[499]) / harmonic[-1],
                                 abs=0.01)
    assert counts[0] / counts[9] == pytest.approx(10, rel=0.2)
    # Ranks are spread over class ids, not sorted.
    assert not np.array_equal(by_rank, np.arange(n_classes))
    # power_law=0: uniform classes.
    _, y0, _, prior0 = make_extreme_classification(
        n, n_features=2000, n_classes=n_classes, nnz_per_row=10, power_law=0,
        random_state=0, return_prototypes=True)
    np.testing.assert_allclose(prior0, 1 / n_classes)
    assert np.bincount(y0, minlength=n_classes).max() < 100


def test_extreme_is_learnable():
    """Nearest prototype, and class centroids learned from a training split."""
    X, y, P, _ = make_extreme_classification(
        6000, noise=0.5, random_state=1, return_prototypes=True, **SMALL)
    majority = np.bincount(y).max() / y.size
    assert majority < 0.25
    nearest_prototype = (X @ P.T).toarray().argmax(axis=1)
    assert np.mean(nearest_prototype == y) > 0.95
    X_train, X_test, y_train, y_test = X[:5000], X[5000:], y[:5000], y[5000:]
    onehot = sp.csr_matrix((np.ones(5000), (y_train, np.arange(5000))),
                           shape=(200, 5000))
    centroids = normalize(onehot @ X_train)
    pred = (X_test @ centroids.T).toarray().argmax(axis=1)
    _, unseen = unseen_class_share(y_train, y_test)
    assert np.mean(pred == y_test) > 0.9 - unseen
    # Multilabel: the true classes rank first by prototype overlap.
    X, Y, P, _ = make_extreme_classification(
        2000, n_labels=3, noise=0.3, random_state=1, return_prototypes=True,
        **SMALL)
    top = np.argsort(-(X @ P.T).toarray(), axis=1)[:, :5]
    assert precision_at_k(Y, top, 1) > 0.95


@pytest.mark.parametrize("kwargs", [
    dict(n_samples=0), dict(n_labels=0.5), dict(noise=1.0), dict(noise=-0.1),
    dict(nnz_per_row=0), dict(power_law=-1), dict(n_classes=1.5),
    dict(prototype_size=0), dict(random_state="seed"),
])
def test_extreme_rejects_bad_parameters(kwargs):
    params = dict(n_samples=10, **SMALL)
    params.update(kwargs)
    with pytest.raises(ValueError):
        make_extreme_classification(**params)


# --------------------------------------------------------------------------
# precision_at_k and unseen_class_share
# --------------------------------------------------------------------------

def _brute_precision(label_sets, top, k):
    return np.mean([len(set(row[:k]) & labels) / k
                    for labels, row in zip(label_sets, top.tolist())])


@pytest.mark.parametrize("k", [1, 2, 5])
def test_precision_at_k_multiclass_matches_brute_force(k):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 8, 300)
    top = rng.integers(0, 8, (300, 6))  # repeats within a row count once
    top[:50, 0] = y[:50]
    expected = _brute_precision([{v} for v in y.tolist()], top, k)
    assert precision_at_k(y, top, k) == pytest.approx(expected)
    # String labels, as predict_topk returns classes_.
    names = np.array(list("abcdefgh"))
    assert precision_at_k(names[y], names[top], k) == pytest.approx(expected)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_precision_at_k_multilabel_matches_brute_force(k):
    rng = np.random.default_rng(1)
    dense = (rng.random((200, 30)) < 0.1).astype(np.int8)
    dense[3] = 0  # a row without labels
    Y = sp.csr_matrix(dense)
    Y.data[:5] = 0  # explicit zeros are not labels
    label_sets = [set(np.flatnonzero(Y[i].toarray()).tolist()) for i in range(200)]
    top = rng.integers(-1, 32, (200, 5))  # -1 and 30, 31: out of range, misses
    for i in range(0, 200, 3):
        if label_sets[i]:
            top[i, : min(2, len(label_sets[i]))] = sorted(label_sets[i])[:2]
    expected = _brute_precision(label_sets, top, k)
    assert precision_at_k(Y, top, k) == pytest.approx(expected)
    assert precision_at_k(Y.toarray(), top, k) == pytest.approx(expected)


def test_precision_at_k_checks_its_input():
    y = np.array([0, 1, 2])
    top = np.zeros((3, 2), dtype=int)
    assert precision_at_k(y, np.array([0, 1, 0]), 1) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="at least k=3"):
        precision_at_k(y, top, 3)
    with pytest.raises(ValueError, match="rows"):
        precision_at_k(y, top[:2], 1)
    with pytest.raises(ValueError, match="positive int"):
        precision_at_k(y, top, 0)
    with pytest.raises(ValueError, match="integer column indices"):
        precision_at_k(sp.eye(3, format="csr"), top.astype(float), 1)


def test_unseen_class_share():
    assert unseen_class_share([0, 0, 1], [0, 2, 2, 3]) == (2 / 3, 3 / 4)
    Y_train = sp.csr_matrix(np.array([[1, 0, 0], [1, 1, 0]]))
    Y_test = sp.csr_matrix(np.array([[1, 0, 1], [0, 0, 1]]))
    assert unseen_class_share(Y_train, Y_test) == (1 / 2, 2 / 3)


# --------------------------------------------------------------------------
# Fashion-MNIST: IDX parsing on files written here
# --------------------------------------------------------------------------

def _idx_bytes(array):
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim])
    header += np.array(array.shape, dtype=">u4").tobytes()
    return header + array.tobytes()


def _write_fashion(directory, n_train=5, n_test=3, compress=True, seed=0):
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        images[0, 0, 0], images[0, 0, 1] = 0, 255
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        for name, array in ((f"{prefix}-images-idx3-ubyte", images),
                            (f"{prefix}-labels-idx1-ubyte", labels)):
            data = _idx_bytes(array)
            if compress:
                (directory / (name + ".gz")).write_bytes(gzip.compress(data))
            else:
                (directory / name).write_bytes(data)
        out[prefix] = images, labels
    return out


def test_idx_headers_are_16_and_8_bytes():
    assert len(_idx_bytes(np.zeros((4, 28, 28)))) == 16 + 4 * 784
    assert len(_idx_bytes(np.zeros(4))) == 8 + 4


@pytest.mark.parametrize("compress", [True, False])
def test_load_fashion_mnist_parses_idx(tmp_path, compress):
    written = _write_fashion(tmp_path, compress=compress)
    images, labels = written["train"]
    data = load_fashion_mnist(tmp_path)
    assert data.data.shape == (5, 784) and data.data.dtype == np.float32
    np.testing.assert_allclose(data.data, images.reshape(5, -1) / 255, rtol=1e-6)
    assert data.data.min() == 0 and data.data.max() == 1
    np.testing.assert_array_equal(data.target, labels)
    assert data.target.dtype == np.int64
    assert data.target_names[0] == "T-shirt/top" and len(data.target_names) == 10
    assert len(data.filenames) == 2

    X, y = load_fashion_mnist(tmp_path, kind="test", dtype=np.float64,
                              return_X_y=True)
    test_images, test_labels = written["t10k"]
    assert X.dtype == np.float64
    np.testing.assert_array_equal(X, test_images.reshape(3, -1) / 255)
    np.testing.assert_array_equal(y, test_labels)

    X_train, X_test, y_train, y_test = load_fashion_mnist(
        tmp_path, kind="both", return_X_y=True)
    assert X_train.shape == (5, 784) and X_test.shape == (3, 784)
    np.testing.assert_array_equal(y_test, test_labels)
    both = load_fashion_mnist(str(tmp_path), kind="both")
    assert set(both) >= {"X_train", "X_test", "y_train", "y_test", "DESCR"}


def test_load_fashion_mnist_rejects_bad_idx(tmp_path):
    _write_fashion(tmp_path)
    name = tmp_path / "train-images-idx3-ubyte.gz"
    good = gzip.decompress(name.read_bytes())
    name.write_bytes(gzip.compress(b"\x12\x34" + good[2:]))
    with pytest.raises(ValueError, match="magic number"):
        load_fashion_mnist(tmp_path)
    name.write_bytes(gzip.compress(good[:-10]))
    with pytest.raises(ValueError, match="bytes follow"):
        load_fashion_mnist(tmp_path)
    name.write_bytes(gzip.compress(_idx_bytes(np.zeros((4, 28, 28)))))
    with pytest.raises(ValueError, match="4 images but .* 5 labels"):
        load_fashion_mnist(tmp_path)
    with pytest.raises(ValueError, match="kind"):
        load_fashion_mnist(tmp_path, kind="validation")
    with pytest.raises(ValueError, match="floating"):
        load_fashion_mnist(tmp_path, dtype=np.uint8)


def test_load_fashion_mnist_missing_files_say_what_to_install(tmp_path):
    with pytest.raises(DatasetNotFoundError) as exc:
        load_fashion_mnist(tmp_path / "nowhere")
    assert isinstance(exc.value, FileNotFoundError)
    assert exc.value.package == "dataset-fashion-mnist"
    message = str(exc.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert "path=" in message
    # One file missing out of four.
    _write_fashion(tmp_path / "partial")
    (tmp_path / "partial" / "t10k-labels-idx1-ubyte.gz").unlink()
    load_fashion_mnist(tmp_path / "partial")  # the train split is complete
    with pytest.raises(DatasetNotFoundError, match="t10k-labels-idx1-ubyte"):
        load_fashion_mnist(tmp_path / "partial", kind="test")


# --------------------------------------------------------------------------
# WordNet: parsing on a small data.noun written here
# --------------------------------------------------------------------------

LICENCE = (
    "  1 This software and database is being provided to you, the LICENSEE, by  \n"
    "  2 Princeton University under the following license.  \n"
)


def _synset(offset, words, pointers, gloss):
    """A data.noun line; w_cnt in hexadecimal, p_cnt as 3 decimal digits."""
    fields = [f"{offset:08d}", "03", "n", f"{len(words):02x}"]
    for w in words:
        fields += [w, "0"]
    fields.append(f"{len(pointers):03d}")
    for symbol, target in pointers:
        fields += [symbol, f"{target:08d}", "n", "0000"]
    return " ".join(fields) + f" | {gloss}  \n"


def _write_wordnet(path):
    # root <- a <- b; root <-(instance) c; b and c are both hypernyms of d;
    # 17 synsets e0..e16 under a, each with a word of its own in its gloss.
    lines = [
        _synset(100, ["root"], [("~", 200)], "the top"),
        _synset(200, ["alpha"], [("@", 100), ("~", 300)], "first kind alphaword"),
        # 16 words: w_cnt is "10" in hexadecimal.
        _synset(300, [f"beta{i}" for i in range(16)], [("+", 200), ("@", 200)],
                "second kind betaword"),
        _synset(400, ["gamma"], [("@i", 100)], "an instance gammaword"),
        _synset(500, ["delta"], [("@", 300), ("@i", 400)], "both deltaword"),
    ]
    lines += [_synset(1000 + i, [f"e{i}"], [("@", 200)], f"leaf uniq{i}x")
              for i in range(17)]
    path.write_text(LICENCE + "".join(lines))
    return path


def test_parse_data_noun_reads_hex_word_counts(tmp_path):
    offsets, lemmas, glosses, hypernyms = _parse_data_noun(
        _write_wordnet(tmp_path / "data.noun"))
    assert offsets[:5] == [100, 200, 300, 400, 500]
    assert lemmas[2] == "beta0"
    assert glosses[1] == "first kind alphaword"
    assert hypernyms[:5] == [[], [100], [200], [100], [300, 400]]


def test_load_wordnet_small_file(tmp_path):
    path = _write_wordnet(tmp_path / "data.noun")
    data = load_wordnet_hypernyms(tmp_path, test_size=5, random_state=0)
    n = 21  # every synset but the root
    assert data.X_train.shape[0] == 16 and data.X_test.shape[0] == 5
    synsets = np.concatenate([data.synsets_train, data.synsets_test])
    assert sorted(synsets) == sorted([200, 300, 400, 500]
                                     + [1000 + i for i in range(17)])
    # First hypernym of each sample.
    first = {200: 100, 300: 200, 400: 100, 500: 300, **{1000 + i: 200
                                                        for i in range(17)}}
    got = data.classes[np.concatenate([data.y_train, data.y_test])]
    assert [first[s] for s in synsets] == got.tolist()
    assert data.classes.tolist() == [100, 200, 300]
    assert data.class_names.tolist() == ["root", "alpha", "beta0"]
    assert data.X_train.dtype == np.float32 and data.X_train.indices.dtype == np.int32
    # The vocabulary comes from the training glosses only.
    vocabulary = set(data.feature_names)
    for s in data.synsets_train.tolist():
        if s >= 1000:
            assert f"uniq{s - 1000}x" in vocabulary
    for s in data.synsets_test.tolist():
        if s >= 1000:
            assert f"uniq{s - 1000}x" not in vocabulary
    assert data.X_train.shape[1] == len(vocabulary)
    class_share, target_share = unseen_class_share(data.y_train, data.y_test)
    assert data.unseen_test_class_share == class_share
    assert data.unseen_test_target_share == target_share

    # Multilabel: all ancestors through '@' and '@i'.
    ml = load_wordnet_hypernyms(path, multilabel=True, test_size=5, random_state=0)
    np.testing.assert_array_equal(ml.synsets_train, data.synsets_train)
    Y = sp.vstack([ml.y_train, ml.y_test]).tocsr()
    assert Y.shape == (n, 4) and ml.classes.tolist() == [100, 200, 300, 400]
    ancestors = {200: {100}, 300: {100, 200}, 400: {100},
                 500: {100, 200, 300, 400}}
    for row, s in enumerate(synsets.tolist()):
        assert set(ml.classes[Y[row].indices].tolist()) == ancestors.get(s, {100, 200})
    X_train, X_test, y_train, y_test = load_wordnet_hypernyms(
        path, test_size=5, random_state=0, return_X_y=True)
    np.testing.assert_array_equal(y_test, data.y_test)
    assert (X_test != data.X_test).nnz == 0
    # Another seed, another split.
    other = load_wordnet_hypernyms(path, test_size=5, random_state=1)
    assert not np.array_equal(other.synsets_test, data.synsets_test)


def test_load_wordnet_rejects_malformed_lines(tmp_path):
    path = tmp_path / "data.noun"
    path.write_text(LICENCE + "00000100 03 n 01 root 0 002 @ 00000200 n | truncated\n")
    with pytest.raises(ValueError, match="line 3"):
        load_wordnet_hypernyms(path)


def test_load_wordnet_missing_file_says_what_to_install(tmp_path):
    for where in (tmp_path, tmp_path / "missing" / "data.noun"):
        with pytest.raises(DatasetNotFoundError) as exc:
            load_wordnet_hypernyms(where)
        assert isinstance(exc.value, FileNotFoundError)
        assert exc.value.package == "wordnet-base"
        assert "apt-get install wordnet-base" in str(exc.value)
        assert "path=" in str(exc.value)


# --------------------------------------------------------------------------
# Real data from the Debian packages (installed on the dev machines and in CI)
# --------------------------------------------------------------------------

def _or_skip(loader, package, **kwargs):
    try:
        return loader(**kwargs)
    except DatasetNotFoundError as exc:
        pytest.skip(f"needs the Debian package {package} "
                    f"(apt-get install {package}): {exc}")


@pytest.fixture(scope="module")
def fashion():
    return _or_skip(load_fashion_mnist, "dataset-fashion-mnist", kind="both")


@pytest.fixture(scope="module")
def wordnet():
    return _or_skip(load_wordnet_hypernyms, "wordnet-base")


@pytest.fixture(scope="module")
def wordnet_multilabel():
    return _or_skip(load_wordnet_hypernyms, "wordnet-base", multilabel=True)


def test_real_fashion_mnist(fashion):
    assert fashion.X_train.shape == (60_000, 784)
    assert fashion.X_test.shape == (10_000, 784)
    assert fashion.X_train.dtype == np.float32
    assert fashion.X_train.min() == 0 and fashion.X_train.max() == 1
    np.testing.assert_array_equal(np.bincount(fashion.y_train), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(fashion.y_test), [1000] * 10)
    # The first test images of the standard file: ankle boot, pullover, trouser.
    assert fashion.y_test[:3].tolist() == [9, 2, 1]


def test_real_wordnet_hypernyms(wordnet):
    n_train, n_test = wordnet.X_train.shape[0], wordnet.X_test.shape[0]
    assert n_train + n_test == 82_114
    assert n_test == 16_423  # ceil(0.2 * 82114)
    assert wordnet.classes.shape == (16_897,)
    counts = np.bincount(np.concatenate([wordnet.y_train, wordnet.y_test]))
    assert counts.size == 16_897 and counts.min() == 1
    assert (counts == 1).sum() == 6_162 and counts.max() == 659
    assert wordnet.X_train.dtype == np.float32
    assert wordnet.X_train.indices.dtype == np.int32
    # Shuffled before the split (data.noun is sorted by offset).
    assert not np.all(np.diff(wordnet.synsets_train) > 0)
    # The vocabulary is that of the training glosses, no more.
    offsets, _, glosses, _ = _parse_data_noun(wordnet.filename)
    gloss_of = dict(zip(offsets, glosses))
    train_glosses = [gloss_of[s] for s in wordnet.synsets_train.tolist()]
    vocabulary = CountVectorizer().fit(train_glosses).vocabulary_
    assert wordnet.vectorizer.vocabulary_ == vocabulary
    assert 35_000 < len(vocabulary) < 45_000
    assert 0.1 < wordnet.unseen_test_class_share < 0.3
    assert wordnet.unseen_test_target_share == pytest.approx(
        unseen_class_share(wordnet.y_train, wordnet.y_test)[1])


def test_real_wordnet_multilabel(wordnet, wordnet_multilabel):
    ml = wordnet_multilabel
    assert ml.classes.shape == (17_157,)
    Y = sp.vstack([ml.y_train, ml.y_test]).tocsr()
    assert Y.shape == (82_114, 17_157) and np.all(Y.data == 1)
    assert Y.nnz / Y.shape[0] == pytest.approx(9.05, abs=0.01)
    # Same seed, same split; each sample's first hypernym is among its labels.
    np.testing.assert_array_equal(ml.synsets_test, wordnet.synsets_test)
    cols = np.searchsorted(ml.classes, wordnet.classes[wordnet.y_test])
    assert np.all(ml.y_test[np.arange(ml.y_test.shape[0]), cols] == 1)
