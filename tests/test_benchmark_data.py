"""The loaders of the benchmarks' data sets (benchmarks/data.py).

benchmarks/ is not a package and not installed: its data module is loaded
from its file here.
"""

import gzip
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer


def _load_benchmark_data():
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "data.py"
    spec = importlib.util.spec_from_file_location("benchmarks_data", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_data = _load_benchmark_data()
DatasetNotFoundError = _data.DatasetNotFoundError
_parse_data_noun = _data._parse_data_noun
load_fashion_mnist = _data.load_fashion_mnist
load_wordnet_hypernyms = _data.load_wordnet_hypernyms
unseen_class_share = _data.unseen_class_share

# --------------------------------------------------------------------------
# unseen_class_share
# --------------------------------------------------------------------------

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
