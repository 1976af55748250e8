"""The network's layers on the Python side: weights, optimizer state, hashing.

A ``Network`` owns its ``Layer`` objects; a hashed layer's ``LayerHashing``
holds how it chooses its neurons (hash functions, tables, budgets) and its
rebuild schedule. The estimator decides when to train and rebuild; everything
that changes a layer's tables goes through its ``LayerHashing``. The compiled
worker (``_network.BatchTrainer``) reads these objects' arrays, checked, and
points at the current hash functions and tables.
"""

import math
import numbers

import numpy as np
import scipy.sparse as sp
from sklearn.utils.extmath import randomized_svd

from ._hashing import DENSE_PROJECTION_ENTRIES, HashFunctions
from ._network import BatchTrainer, stored_by_input
from ._tables import HashTables

# Layers narrower than this gain too little from hashing to hash under 'auto'.
AUTO_MIN_WIDTH = 256
# MinHash needs a set: the top entries of a weight row stand for the neuron.
MINHASH_TOP_WEIGHTS = 32
# Selection's cost model (selection_costs, hash_config): a random memory read
# of hashing or retrieval in streamed multiply-adds; how much more exact
# scoring may cost than retrieval and still be chosen under 'auto' (recall 1.0
# against a share of the true top-k is worth an order of magnitude); and the
# densest input (non-zeros over the dense network's) that premium is paid for:
# beyond it, scoring every neuron is the dense layer's own work, chosen only
# where it costs no more than retrieval.
RANDOM_READ_COST = 4.0
EXACT_PREMIUM = 10.0
MAX_EXACT_DENSITY = 0.25
# Subspace selection (a layer reading the network's dense input): the share of
# the input's variance its principal directions must hold for scores in them
# to rank neurons, the most directions kept, and the fewest sample rows they
# are estimated from.
SUBSPACE_MIN_VARIANCE = 0.6
MAX_SUBSPACE_RANK = 64
SUBSPACE_MIN_ROWS = 64
SUBSPACE_SAMPLE_ROWS = 2048
# hash_family='auto': SimHash while one build of its tables costs at most this
# many times the candidate scoring of the batches between builds, or DWTA's
# build (``auto_family``). A multiply-add of SimHash's projections of float32
# rows by matrix products (``_hashing.simhash_block``) against a streamed one:
# measured at 670,091 x 128 (1,300 hashes, 100 tables), a SimHash build took
# 3.96 s of CPU against DWTA's 3.52 s, which these costs put at 1.12x.
SIMHASH_BUILD_RATIO = 2.0
PRODUCT_SPEEDUP = 10.4
# rebuild_interval='auto': the first rebuild after this many batches, or after
# as many as keep a build within SIMHASH_BUILD_RATIO times the candidate
# scoring of the batches since the last one (``min_rebuild_interval``).
AUTO_REBUILD_INTERVAL = 50
# Initial weights are drawn in blocks of at most this many float64 values.
INIT_BLOCK_DRAWS = 1 << 22
# ... and written transposed in tiles of about this many values.
INIT_TILE_ENTRIES = 1 << 20


def hashed_layers(layer_units, lsh_layers, can_hash_output, out_activation):
    """Which weight layers hash, from the ``lsh_layers`` parameter."""
    n_weight_layers = len(layer_units) - 1
    if isinstance(lsh_layers, str):
        if lsh_layers == "none":
            return [False] * n_weight_layers
        hashed = []
        for i in range(n_weight_layers):
            is_output = i == n_weight_layers - 1
            ok = (not is_output or can_hash_output) and layer_units[i] >= 2
            if lsh_layers == "auto":
                ok = ok and layer_units[i + 1] >= AUTO_MIN_WIDTH
            hashed.append(ok)
        return hashed
    try:
        indices = [int(i) for i in lsh_layers]
    except (TypeError, ValueError):
        raise ValueError(
            "The 'lsh_layers' parameter must be 'auto', 'all', 'none' or a list "
            f"of weight-layer indices in [0, {n_weight_layers - 1}]; got "
            f"{lsh_layers!r}."
        ) from None
    hashed = [False] * n_weight_layers
    for i in indices:
        if not 0 <= i < n_weight_layers:
            raise ValueError(
                f"lsh_layers names layer {i}, but the network has weight layers "
                f"0 to {n_weight_layers - 1} (the last is the output layer)."
            )
        if i == n_weight_layers - 1 and not can_hash_output:
            raise ValueError(
                f"lsh_layers names the output layer {i}, which cannot hash: "
                f"its activation '{out_activation}' needs every output."
            )
        if layer_units[i] < 2:
            raise ValueError(
                f"lsh_layers names layer {i}, whose input has "
                f"{layer_units[i]} feature(s); hashing needs at least 2."
            )
        hashed[i] = True
    return hashed


def selection_costs(config, fan_in, width, input_nnz):
    """Operations per sample of choosing a hashed layer's active set.

    Returns ``(exact, lsh)``: scoring every neuron over the input's non-zeros
    (``width x input_nnz`` multiply-adds) against hashing the input, reading
    the L buckets and ranking the candidates. Table and hashing work reads
    memory at random (an id, a bucket, a permutation entry); each such read
    is counted as ``RANDOM_READ_COST`` multiply-adds, which stream.
    """
    hashing = _hashing_reads(config, fan_in, input_nnz)
    n_buckets = 1 << config["key_bits"]
    reads = hashing + config["n_tables"] * max(1.0, width / n_buckets)
    lsh = RANDOM_READ_COST * reads + config["n_candidates"] * input_nnz
    return width * input_nnz, lsh


def _hashing_reads(config, fan_in, input_nnz):
    """Operations of hashing one input of ``input_nnz`` non-zeros."""
    n_hashes = config["n_hash_bits"] * config["n_tables"]
    family = config["family"]
    if family == "simhash":
        # Sparse +-1 projections: each non-zero feeds about a third of them.
        return input_nnz * n_hashes / 3
    if family == "wta" and input_nnz >= fan_in:
        return n_hashes * config["bin_size"]
    # DWTA (and MinHash, WTA on a sparse row): each non-zero enters one bin of
    # every permutation; empty bins are filled by densification.
    n_perms = math.ceil(n_hashes * config["bin_size"] / fan_in)
    return input_nnz * n_perms + n_hashes


def input_subspace(X, random_state=0):
    """Principal directions of a dense input sample, for subspace selection.

    Returns ``(center, components, captured)``: the mean row (n_features,),
    up to ``MAX_SUBSPACE_RANK`` orthonormal directions of largest variance as
    rows, and the share of the total variance the first 1, 2, ... hold; None
    when the sample is too small or sparse.
    """
    n_rows, n_features = X.shape
    if sp.issparse(X) or n_rows < SUBSPACE_MIN_ROWS or n_features < 2:
        return None
    if n_rows > SUBSPACE_SAMPLE_ROWS:
        # Evenly spaced rows, not the first ones: data sorted by class stays
        # represented, and no draw is taken from the estimator's generator.
        X = X[np.linspace(0, n_rows - 1, SUBSPACE_SAMPLE_ROWS).astype(np.intp)]
    else:
        X = np.array(X)  # a copy, centred in place below
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    center = X.mean(axis=0, dtype=np.float64)
    X -= center.astype(X.dtype)
    total = float(np.einsum("ij,ij->", X, X, dtype=np.float64))
    if total == 0.0:
        return None
    n_components = min(MAX_SUBSPACE_RANK, n_features - 1, X.shape[0] - 1)
    _, singular, components = randomized_svd(X, n_components, n_iter=4,
                                             random_state=random_state)
    return center, components, np.cumsum(singular**2) / total


def subspace_rank(config, width, input_nnz):
    """Directions of a subspace layer: its scores cost at most half the exact
    ranking of the candidates they choose (``rank x (nnz + width)`` against
    ``n_candidates x nnz``)."""
    return int(config["n_candidates"] * input_nnz // (2 * (input_nnz + width)))


def active_budget(active_fraction, width):
    """How many of a layer's ``width`` neurons ``active_fraction`` keeps active."""
    if isinstance(active_fraction, numbers.Integral):
        return min(int(active_fraction), width)
    return max(1, math.ceil(active_fraction * width))


def auto_family(fan_in, width, *, n_hash_bits, batch_size, rebuild_interval,
                input_nnz=None, float32=True, **config_params):
    """The hash family of ``hash_family='auto'``: SimHash unless building its
    tables costs too much against the training they serve.

    SimHash ranks neurons by angle, what an inner product needs; with rows
    and queries centered (``_built``) it found more of the exact top-k than
    DWTA on the wide output layers measured (WordNet, 16,897 classes: 0.25
    against 0.11 of the top 5%, P@1 0.331 against 0.294; 10^5 synthetic
    classes: P@1 0.353 against 0.298; 670,091: 0.427 against 0.411), and as
    much on the demonstration's 4,000 (0.14 against 0.13 of the top 2%,
    accuracy 0.963 against 0.964). Hashing a neuron's row costs ``fan_in x K
    x L`` multiply-adds, done for float32 rows as a matrix product at
    ``PRODUCT_SPEEDUP`` times the rate of a streamed one when the projections
    are kept dense, else ``fan_in x K x L / 3`` additions over the sparse
    projections row by row; a DWTA row costs what hashing a dense input
    costs DWTA (``_hashing_reads``). SimHash is chosen when a build costs at
    most ``SIMHASH_BUILD_RATIO`` times the candidate scoring of the batches
    before its first rebuild (later intervals grow) or DWTA's build, a
    candidate's score costing the ``input_nnz`` non-zeros of a sample's input
    (default ``fan_in``) while a neuron's row holds all ``fan_in`` weights: 2,048
    neurons over 100,000 sparse features (75 non-zeros a row; projections too
    large to keep dense) cost 700 times the scoring between builds, 25 s of
    CPU a build, and take DWTA. Keys of more than 8 codes are SimHash's
    alone.
    """
    if n_hash_bits != "auto" and int(n_hash_bits) > 8:
        return "simhash"
    simhash = hash_config(fan_in, width, hash_family="simhash",
                          n_hash_bits=n_hash_bits, **config_params)
    build = build_cost(simhash, fan_in, width, float32)
    dwta = hash_config(fan_in, width, hash_family="dwta", n_hash_bits=n_hash_bits,
                       **config_params)
    dwta_build = build_cost(dwta, fan_in, width, float32)
    input_nnz = fan_in if input_nnz is None else input_nnz
    if rebuild_interval == "auto":
        rebuild_interval = AUTO_REBUILD_INTERVAL
    scoring = rebuild_interval * batch_size * simhash["n_candidates"] * input_nnz
    return ("simhash" if build <= SIMHASH_BUILD_RATIO * max(scoring, dwta_build)
            else "dwta")


def build_cost(config, fan_in, width, float32=True):
    """Operations of one build of a layer's tables: hashing every neuron's
    row of ``fan_in`` weights, in ``selection_costs``' units (see
    ``auto_family``)."""
    n_hashes = config["n_hash_bits"] * config["n_tables"]
    if config["family"] == "simhash":
        # A layer of centered queries hashes one more coordinate (_built).
        # Beyond DENSE_PROJECTION_ENTRIES the projections stay sparse alone.
        if float32 and (fan_in + 1) * n_hashes <= DENSE_PROJECTION_ENTRIES:
            return width * (fan_in + 1) * n_hashes / PRODUCT_SPEEDUP
        return width * fan_in * n_hashes / 3
    return width * RANDOM_READ_COST * _hashing_reads(config, fan_in, fan_in)


def min_rebuild_interval(config, fan_in, width, *, input_nnz, batch_size,
                         float32=True):
    """Batches between two builds of a table layer under
    ``rebuild_interval='auto'``: enough that a build costs at most
    ``SIMHASH_BUILD_RATIO`` times the candidates' scoring in them.

    A build hashes every neuron, a batch scores ``n_candidates`` of them per
    row: at a fixed budget the first grows with the width and the second does
    not, so on a schedule fixed in batches table upkeep would come to rule
    the cost of a very wide layer (670,091 outputs over 128 hidden units:
    three builds of 1.9 s in 195 batches of 0.1 s). The layers of every other
    suite keep the 50 batches: their builds cost less than that scoring.
    """
    input_nnz = fan_in if input_nnz is None else input_nnz
    scoring = batch_size * config["n_candidates"] * input_nnz
    return max(1, math.ceil(build_cost(config, fan_in, width, float32)
                            / (SIMHASH_BUILD_RATIO * scoring)))


def hash_config(fan_in, width, *, hash_family, active_fraction, candidate_factor,
                n_tables, n_hash_bits, min_active, selection="lsh",
                input_nnz=None, input_density=1.0, captured=None, batch_size=200,
                rebuild_interval=50, float32=True):
    """Family, active budget, K, L, bin size and selection of one hashed layer.

    ``hash_family`` 'auto' is ``auto_family``'s choice for a layer that
    retrieves through tables under DWTA's costs, if SimHash's retrieval costs
    no more than exact scores (``selection_costs``); DWTA otherwise.
    ``selection`` 'auto' chooses between exact scores, subspace scores and
    table retrieval by ``selection_costs``, for an input of ``input_nnz``
    non-zeros a sample (default: ``fan_in``, a dense input),
    ``input_density`` times what the dense network's layer reads (below 1
    when a hashed layer feeds it); ``captured``, the share of the input's
    variance its first principal directions hold (``input_subspace``), is
    given for a layer that reads the network's dense input, whose batches
    hold ``batch_size`` rows; ``float32``, whether the network's weights are
    (SimHash hashes float32 rows by matrix products).
    """
    if hash_family == "auto":
        # The selection as DWTA's cheaper hashing prices the tables (SimHash's
        # projections of a dense 784-feature input cost more than scoring
        # every neuron of T1's first layer); a layer that then retrieves
        # through tables takes auto_family's choice if SimHash's retrieval
        # still costs less than exact scores.
        params = dict(active_fraction=active_fraction,
                      candidate_factor=candidate_factor, n_tables=n_tables,
                      n_hash_bits=n_hash_bits, min_active=min_active,
                      batch_size=batch_size, rebuild_interval=rebuild_interval)
        config = hash_config(fan_in, width, hash_family="dwta", selection=selection,
                             input_nnz=input_nnz, input_density=input_density,
                             captured=captured, **params)
        if (config["selection"] != "lsh"
                or auto_family(fan_in, width, input_nnz=input_nnz,
                               float32=float32, **params) == "dwta"):
            return config
        simhash = hash_config(fan_in, width, hash_family="simhash", **params)
        exact, lsh = selection_costs(simhash, fan_in, width,
                                     fan_in if input_nnz is None else input_nnz)
        # SimHash's projections of a dense input of a hundred features cost
        # more than scoring every neuron: DWTA's tables are the cheap ones.
        return simhash if lsh <= exact else config
    budget = active_budget(active_fraction, width)
    if hash_family == "simhash":
        bin_size, code_bits = 2, 1
    else:
        bin_size = 1 << min(3, int(math.log2(fan_in)))
        code_bits = int(math.log2(bin_size))
    n_candidates = min(width, math.ceil(budget * candidate_factor))
    input_nnz = fan_in if input_nnz is None else input_nnz
    # The L buckets a query visits hold about 5x the candidates.
    n_tables = 100 if n_tables == "auto" else int(n_tables)
    if n_hash_bits == "auto":
        n_buckets = n_tables * width / (5 * n_candidates)
        k = round(math.log2(max(n_buckets, 2)) / code_bits)
        k = int(np.clip(k, 1, 24 // code_bits))
    else:
        k = int(n_hash_bits)
    min_active = budget // 2 if min_active == "auto" else min(int(min_active), budget)
    config = dict(family=hash_family, budget=budget, n_candidates=n_candidates,
                  n_hash_bits=k, n_tables=n_tables, bin_size=bin_size,
                  key_bits=min(k * code_bits, 24), min_active=min_active)
    if selection == "auto":
        exact, lsh = selection_costs(config, fan_in, width, input_nnz)
        cheapest = lsh
        if hash_family != "dwta":
            dwta = hash_config(fan_in, width, hash_family="dwta",
                               active_fraction=active_fraction,
                               candidate_factor=candidate_factor,
                               n_tables=n_tables, n_hash_bits=n_hash_bits,
                               min_active=min_active)
            cheapest = min(lsh, selection_costs(dwta, fan_in, width, input_nnz)[1])
        # Exact scores find the true top-budget neurons; retrieval finds a
        # share of them. Where they cost no more than any tables' hashing and
        # reads (DWTA's are the cheapest; a narrow input: load_diabetes' 10
        # features into 500 neurons, 5,000 multiply-adds against about
        # 11,000), tables lose both ways, however dense the input. (A family
        # whose own hashing costs more, SimHash over 400 dense features, is
        # used as asked.)
        cheap = exact <= cheapest or (input_density <= MAX_EXACT_DENSITY
                                      and exact <= EXACT_PREMIUM * lsh)
        selection = "exact" if cheap else "lsh"
        # A dense input whose variance lies in a few directions: scores in
        # them rank every neuron (when some are to be left out) for less than
        # the tables' reads, and find most of the top-k (Fashion-MNIST: 0.9
        # of the top 50 of 1000 from 16 directions, 0.2 by the tables).
        rank = min(subspace_rank(config, width, input_nnz),
                   0 if captured is None else len(captured))
        if (selection == "lsh" and rank >= 1 and n_candidates < width
                and captured[rank - 1] >= SUBSPACE_MIN_VARIANCE):
            selection = "subspace"
            config["rank"] = rank
            # Refreshing the projected weights (width x fan_in x rank) costs
            # at most half what the batches between refreshes spend scoring.
            config["refresh_interval"] = math.ceil(
                2 * width * fan_in / (batch_size * (input_nnz + width)))
    config["selection"] = selection
    return config


class LayerHashing:
    """How a hashed layer chooses its neurons, and when it is refreshed.

    Parameters
    ----------
    config : dict
        From ``hash_config``: family, budget, n_candidates, n_hash_bits,
        n_tables, bin_size, key_bits, min_active, selection ('lsh'; 'exact':
        every neuron scored over the input's non-zeros, no tables;
        'subspace': every neuron scored in ``rank`` principal directions of
        the input, no tables).
    strategy : {'union', 'topk', 'threshold'}
        How the tables' answer is read.
    min_count : int
        The table count of 'threshold'.

    Attributes
    ----------
    query_center : ndarray of shape (n_in,) or None
        SimHash tables over a dense hidden input (``config['center_queries']``):
        the mean input of the batch before the last build, which queries
        subtract (see ``_built``); updated in place, as a worker points at it.
    """

    # Models saved before centered queries existed load without one.
    query_center = None

    def __init__(self, config, strategy, min_count):
        self.config = config
        self.strategy = strategy
        self.min_count = min_count
        self.functions = None
        self.tables = None
        self.n_rebuilds = 0
        self.next_rebuild = None
        # Subspace selection: the input's mean and directions (fixed), and the
        # weights seen through them as of the last refresh.
        self.center = self.basis = self.center_coords = None
        self.projected = self.offset = None

    budget = property(lambda self: self.config["budget"])
    n_candidates = property(lambda self: self.config["n_candidates"])
    min_active = property(lambda self: self.config["min_active"])
    rank = property(lambda self: self.config.get("rank"))
    center_queries = property(lambda self: self.config.get("center_queries", False))
    # 'lsh' in configs saved before exact selection existed.
    selection = property(lambda self: self.config.get("selection", "lsh"))

    def set_subspace(self, center, components, weights):
        """The input's mean and first ``rank`` principal directions (rows of
        ``components``); the weights are projected on them."""
        dtype = weights.dtype
        self.center = np.ascontiguousarray(center, dtype=dtype)
        self.basis = np.ascontiguousarray(components[:self.rank].T, dtype=dtype)
        self.center_coords = self.center @ self.basis
        self.projected = np.empty((weights.shape[0], self.rank), dtype=dtype)
        self.offset = np.empty(weights.shape[0], dtype=dtype)
        self._refresh(weights)

    def _refresh(self, weights):
        # In place: a worker points at these arrays.
        np.matmul(weights, self.basis, out=self.projected)
        np.matmul(weights, self.center, out=self.offset)

    def ensure_writeable(self):
        """Own writeable arrays (a model loaded from a read-only memory map)."""
        if self.projected is not None:
            self.projected = np.require(self.projected, requirements=["C", "W", "A"])
            self.offset = np.require(self.offset, requirements=["C", "W", "A"])
        if self.query_center is not None:
            self.query_center = np.require(self.query_center,
                                           requirements=["C", "W", "A"])

    def _center_queries_on(self, weights, inputs):
        """The mean of ``inputs`` (a batch of the layer's dense inputs) as the
        queries' center; zeros before the first batch."""
        if self.query_center is None:
            self.query_center = np.zeros(weights.shape[1], dtype=weights.dtype)
        if inputs is not None and len(inputs):
            # In place: a worker points at this array.
            self.query_center[...] = np.mean(inputs, axis=0, dtype=np.float64)

    def rehash(self, weights, bias, seed, n_threads, inputs=None):
        """New hash functions drawn from ``seed``, and tables built with them.

        The old functions and tables are released (the worker must be pointed
        at the new ones). A subspace layer refreshes its projected weights.
        ``inputs``: recent dense inputs of the layer, whose mean centers the
        queries of a layer with ``center_queries``.
        """
        if self.selection == "subspace":
            self._refresh(weights)
        if self.selection != "lsh":
            return
        c = self.config
        n_out, n_in = weights.shape
        if self.center_queries:
            self._center_queries_on(weights, inputs)
        # Centered queries carry one more coordinate (see _built).
        functions = HashFunctions(c["family"], c["n_hash_bits"], c["n_tables"],
                                  n_in + self.center_queries,
                                  bin_size=c["bin_size"], key_bits=c["key_bits"],
                                  seed=seed)
        tables = HashTables(c["n_tables"], functions.n_buckets, n_out, seed=seed)
        # Assigned together once built: an interruption keeps the old pair.
        self.functions, self.tables = functions, _built(
            functions, tables, weights, bias, n_threads, self.query_center)

    def rebuild(self, weights, bias, n_threads, inputs=None):
        """Rehash every neuron into the tables, with the same functions.

        The tables are rebuilt in place in one call without the GIL: an
        interruption finds them before or after, never half built. A subspace
        layer refreshes its projected weights. ``inputs`` as in ``rehash``.
        """
        if self.selection == "subspace":
            self._refresh(weights)
        if self.selection != "lsh":
            return
        if self.center_queries:
            self._center_queries_on(weights, inputs)
        _built(self.functions, self.tables, weights, bias, n_threads,
               self.query_center)

    def schedule(self, n_batches, kind, interval, decay):
        """Set the batch count of the next rebuild after one at ``n_batches``."""
        if self.selection == "exact":
            return  # nothing to refresh: next_rebuild stays None
        if self.selection == "subspace":
            self.next_rebuild = n_batches + self.config["refresh_interval"]
            return
        at_least = 1
        if interval == "auto":
            interval = AUTO_REBUILD_INTERVAL
            # Configs saved before this floor existed have none.
            at_least = self.config.get("min_rebuild_interval", 1)
        if kind == "exponential":
            interval = interval * math.exp(decay * self.n_rebuilds)
        self.next_rebuild = n_batches + max(at_least, round(interval))


def _built(functions, tables, weights, bias, n_threads, query_center=None):
    """``tables`` filled with the neurons' keys under ``functions``.

    SimHash rows are hashed less their mean. For a query, every score
    w . x + b then moves by the same -mean . x, so the order of the neurons
    (what the tables are to find) is unchanged, while the direction the rows
    share no longer decides their angles to the query. Trained output rows
    share a large one (WordNet's 16,897 outputs after 5 epochs: its norm is
    0.7 of a row's), which sent most SimHash keys to the same buckets: recall
    of the exact top 5% 0.02 uncentered, 0.28 centered. The rank-order
    families (WTA, DWTA) gained nothing from it (WordNet P@1 -0.3 points,
    ``load_diabetes`` R^2 0.035 against 0.061 over 4 seeds) and hash the rows
    as they are.

    The queries may share a direction too: hidden ReLU outputs all lie in the
    positive orthant (their mean's norm is 0.84 of a row's on WordNet), so
    their codes barely depend on the sample. With a ``query_center`` m (the
    layer's mean input), rows ``[w - c, (w - c) . m + b]`` and queries
    ``[x - m, 1]`` (c the mean row) have the inner product ``w . x + b -
    c . x``: still every neuron's pre-activation less one amount per query.
    Recall of the exact top budget, offline on trained models: 0.08 -> 0.17
    on the demonstration's 4,000 classes (DWTA 0.13), 0.28 -> 0.29 on
    WordNet's 16,897 (DWTA 0.12).
    """
    if functions.family == "minhash":
        # A neuron's set: the indices of its largest weights.
        top = min(MINHASH_TOP_WEIGHTS, weights.shape[1])
        idx = np.argpartition(-weights, top - 1, axis=1)[:, :top]
        idx.sort(axis=1)
        rows = sp.csr_matrix(
            (np.ones(idx.size, dtype=weights.dtype), idx.ravel(),
             np.arange(0, idx.size + 1, top)), shape=weights.shape)
        # hash() makes the keys before build() touches the tables.
        return tables.build(functions.hash(rows, n_threads=n_threads),
                            n_threads=n_threads)
    center = last = None
    if functions.family == "simhash":
        center = weights.mean(axis=0, dtype=np.float64)
        if query_center is not None:
            # In the weights' dtype: float32 weights times a float64 vector
            # would be copied whole to float64 first.
            m = query_center.astype(weights.dtype)
            last = (weights @ m).astype(np.float64) - center @ m + bias
    return tables.build_from_rows(functions, weights, n_threads=n_threads,
                                  center=center, last=last)


class Layer:
    """One weight layer: its parameters, optimizer state and hashing.

    Parameters
    ----------
    weights : ndarray of shape (n_out, n_in)
        C-contiguous: a neuron's weights are contiguous; or, for a dense first
        layer trained on a sparse X, Fortran-ordered (stored by input, see
        ``Network.store_first_layer``). The estimator's ``coefs_[i]`` is its
        transpose (a view).
    bias : ndarray of shape (n_out,)
    activation : str
    hashing : LayerHashing or None
    """

    def __init__(self, weights, bias, activation, hashing=None):
        self.weights = weights
        self.bias = bias
        self.activation = activation
        self.hashing = hashing
        # Optimizer state (see _optimizer): Adam's moments, or SGD's velocity
        # in the first moments and no second ones.
        self.moment1_w = self.moment2_w = self.moment1_b = self.moment2_b = None

    def ensure_writeable(self):
        """Own writeable arrays (a model loaded from a read-only memory map)."""
        for name in ("weights", "bias", "moment1_w", "moment2_w", "moment1_b",
                     "moment2_b"):
            arr = getattr(self, name)
            if arr is not None:
                order = "F" if stored_by_input(arr) else "C"
                setattr(self, name, np.require(arr, requirements=[order, "W", "A"]))
        if self.hashing is not None:
            self.hashing.ensure_writeable()


class Network:
    """The layers of a model, and the count of batches it has trained on.

    Parameters
    ----------
    layers : list of Layer
    """

    def __init__(self, layers):
        self.layers = layers
        self.n_batches = 0

    @property
    def hashed(self):
        return [layer.hashing for layer in self.layers if layer.hashing is not None]

    def worker(self, batch_size, n_threads, *, inference=False, hash_output=True,
               sparse_input=False, max_labels=0, step_base=0):
        """The compiled worker over these layers (see ``BatchTrainer``)."""
        return BatchTrainer(self.layers, batch_size, n_threads,
                            inference_only=inference, step_base=step_base,
                            sparse_input=sparse_input, max_labels=max_labels,
                            hash_output=hash_output)

    def store_first_layer(self, by_input):
        """Store the first layer's weights and moments by input or by neuron.

        By input (Fortran order) when a dense first layer trains on a sparse
        X: a non-zero input then reads and steps one contiguous row of n_out
        entries, not one entry in each neuron's row. By neuron (C order)
        otherwise. Copies what is stored the other way; returns whether
        anything was copied (the estimator's ``coefs_`` views are then stale).
        """
        layer = self.layers[0]
        order = "F" if by_input and layer.hashing is None else "C"
        moved = False
        for name in ("weights", "moment1_w", "moment2_w"):
            arr = getattr(layer, name)
            if arr is not None and stored_by_input(arr) != (order == "F") and not (
                    arr.flags.c_contiguous and arr.flags.f_contiguous):
                setattr(layer, name, np.asarray(arr, order=order))
                moved = True
        return moved

    def check(self):
        """Raise ValueError unless the layers' arrays make one network.

        Builds a one-row worker, which checks shapes, dtypes, contiguity and
        that each layer's hashing fits it, then checks the optimizer state's
        shapes: a model loaded from a damaged file is refused at load, not at
        its first use.
        """
        self.worker(1, 1, inference=True)
        for i, layer in enumerate(self.layers):
            for name in ("moment1_w", "moment2_w", "moment1_b", "moment2_b"):
                state = getattr(layer, name)
                like = layer.weights if name.endswith("w") else layer.bias
                if state is not None and (
                        np.shape(state) != like.shape
                        or getattr(state, "dtype", None) != like.dtype):
                    raise ValueError(
                        f"the optimizer state {name} of layer {i} has shape "
                        f"{np.shape(state)} and dtype "
                        f"{getattr(state, 'dtype', type(state).__name__)}; the "
                        f"layer needs {like.shape} and {like.dtype}.")

    def rebuild_due(self):
        """The indices of the hashed layers due for a rebuild (tables) or
        refresh (subspace)."""
        return [i for i, layer in enumerate(self.layers)
                if layer.hashing is not None and layer.hashing.next_rebuild is not None
                and self.n_batches >= layer.hashing.next_rebuild]

    def rebuild(self, worker, random_state, n_threads, *, kind, interval, decay,
                rehash_interval, n_rows=0):
        """Rebuild the due layers' tables from their current weights.

        Every ``rehash_interval``-th rebuild of a layer draws new hash
        functions (seeded from ``random_state``, in layer order). Call it with
        the weights caught up (the optimizer's ``catch_up``), after the
        worker's last batch of ``n_rows`` rows (whose inputs center the
        queries of layers that do so). Returns the indices of the layers
        rebuilt.
        """
        rebuilt = []
        for i, layer in enumerate(self.layers):
            h = layer.hashing
            if (h is None or h.next_rebuild is None
                    or self.n_batches < h.next_rebuild):
                continue
            h.n_rebuilds += 1
            inputs = None
            if h.center_queries and worker is not None and n_rows > 0:
                # A dense layer's activations: every neuron, in order.
                inputs = worker.activations[i - 1][:n_rows]
            if (h.selection == "lsh" and rehash_interval is not None
                    and h.n_rebuilds % rehash_interval == 0):
                h.rehash(layer.weights, layer.bias, _seed(random_state),
                         n_threads, inputs)
                if worker is not None:
                    worker.set_hashing(i, h.functions, h.tables)
            else:
                h.rebuild(layer.weights, layer.bias, n_threads, inputs)
            h.schedule(self.n_batches, kind, interval, decay)
            rebuilt.append(i)
        return rebuilt

    def snapshot(self):
        """A copy of the parameters and tables (early stopping's best)."""
        return [(layer.weights.copy(order="K"), layer.bias.copy(),
                 None if layer.hashing is None or layer.hashing.tables is None
                 else (layer.hashing.functions, layer.hashing.tables.copy(),
                       None if layer.hashing.query_center is None
                       else layer.hashing.query_center.copy()))
                for layer in self.layers]

    def restore(self, snapshot):
        """Put back the parameters and tables of ``snapshot``."""
        for layer, (weights, bias, hashing) in zip(self.layers, snapshot):
            layer.weights, layer.bias = weights, bias
            if hashing is not None:
                layer.hashing.functions, layer.hashing.tables, center = hashing
                if center is not None:
                    layer.hashing.query_center[...] = center
            elif layer.hashing is not None and layer.hashing.selection == "subspace":
                layer.hashing.rebuild(weights, bias, 1)


def network_bytes(layer_units, dtype, configs, solver):
    """About how many bytes a new network of these layers takes to build.

    Its weights and biases, the optimizer's state (Adam: two moments; SGD:
    one; L-BFGS: a float64 gradient and scipy's ten correction pairs), the
    float64 draw of the largest layer's initial weights (made as MLP makes
    it, then converted), and the tables' ids of hashed layers (two int32 per
    neuron and table, ids and offsets at most).
    """
    itemsize = np.dtype(dtype).itemsize
    n_params = sum((n_in + 1) * n_out
                   for n_in, n_out in zip(layer_units[:-1], layer_units[1:]))
    state = {"adam": 2 * n_params * itemsize, "sgd": n_params * itemsize,
             "lbfgs": 22 * n_params * 8}[solver]
    draw = 8 * max(n_in * n_out
                   for n_in, n_out in zip(layer_units[:-1], layer_units[1:]))
    tables = sum(8 * c["n_tables"] * n_out for c, n_out in zip(
        configs, layer_units[1:]) if c is not None and c["selection"] == "lsh")
    return n_params * itemsize + state + draw + tables


def available_memory():
    """Bytes of memory available to a new allocation, or None if unknown
    (Linux's MemAvailable)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _seed(random_state):
    return int(random_state.randint(np.iinfo(np.int32).max))


def _draw_weights(random_state, bound, fan_in, fan_out, dtype, by_input=False):
    """U(-bound, bound) weights of shape (fan_out, fan_in), the values MLP draws
    for its (fan_in, fan_out) coefs, drawn in blocks of at most
    ``INIT_BLOCK_DRAWS`` values: no float64 copy of a wide layer is ever whole
    (100,000 -> 2,048: 1.6 GB), and the transposed cast reads one block at a
    time instead of striding across the whole draw. ``by_input``: stored by
    input (Fortran order, see ``Network.store_first_layer``)."""
    weights = (np.empty((fan_in, fan_out), dtype=dtype).T if by_input
               else np.empty((fan_out, fan_in), dtype=dtype))
    rows = max(1, INIT_BLOCK_DRAWS // fan_out)
    for start in range(0, fan_in, rows):
        stop = min(fan_in, start + rows)
        block = random_state.uniform(-bound, bound, (stop - start, fan_out))
        if by_input:
            weights[:, start:stop] = block.T
            continue
        # Cast first, then transpose: NumPy's casting copy into a strided
        # destination is 4-5x slower than a cast and a plain strided copy
        # (128 x 670,091 float32: 1.1 -> 0.2 s; same values). A block of
        # many inputs is transposed in tiles of neurons that stay in cache
        # (100,000 x 2,048: 2.0 -> 1.2 s).
        block = block.astype(dtype, copy=False)
        tile = max(1, INIT_TILE_ENTRIES // (stop - start))
        for first in range(0, fan_out, tile):
            weights[first:first + tile, start:stop] = block[:, first:first + tile].T
    return weights


def new_network(layer_units, dtype, random_state, *, activation, out_activation,
                weight_init, hashed, configs, strategy, min_count, n_threads,
                subspace=None, sparse_input=False):
    """Initial weights (drawn as MLP draws them) and tables of a network.

    ``subspace``: the ``(center, components)`` of ``input_subspace`` for a
    first layer whose selection is 'subspace'. ``sparse_input``: the first
    fit's X is sparse, so a dense first layer is stored by input.
    """
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(layer_units[:-1], layer_units[1:])):
        # Glorot initialisation, drawn as MLP draws it (same random_state, same
        # values but for the bound), or PyTorch's nn.Linear default.
        factor = 2.0 if activation == "logistic" else 6.0
        selects = (weight_init == "auto" and hashed[i]
                   and configs[i]["budget"] < fan_out)
        if weight_init == "fan_in":
            bound = 1.0 / np.sqrt(fan_in)
        elif selects and i == len(layer_units) - 2:
            # A hashed output layer: He's bound, Glorot's without the fan-out
            # term. With the budget in its place, the weights of a wide layer
            # over a narrow hidden one start too small to train in a pass:
            # 128 -> 10^4 / 10^5 / 670,091 classes, P@1 after 50,000 rows
            # 0.563 / 0.420 / 0.266 with the budget, 0.661 / 0.512 / 0.411
            # without (dense PyTorch 0.571 / 0.383); WordNet after 5 epochs
            # 0.331 -> 0.343.
            bound = np.sqrt(factor / fan_in)
        elif selects:
            # Glorot balances the variance of the forward pass (fan_in) and of
            # the backward pass through the neurons a sample computes: in a
            # hashed hidden layer its active budget, not all of them. (He's
            # bound, larger, cost digits' 64 -> 1000 layer a point.)
            bound = np.sqrt(factor / (fan_in + configs[i]["budget"]))
        else:
            # Dense layers, and a hashed layer whose budget covers its width
            # (every neuron computed): MLP's draws.
            bound = np.sqrt(factor / (fan_in + fan_out))
        weights = _draw_weights(random_state, bound, fan_in, fan_out, dtype,
                                by_input=i == 0 and sparse_input and not hashed[i])
        intercept = random_state.uniform(-bound, bound, fan_out)
        layers.append(Layer(
            weights, intercept.astype(dtype),
            activation if i < len(layer_units) - 2 else out_activation))
    for layer, is_hashed, config in zip(layers, hashed, configs):
        if is_hashed:
            layer.hashing = LayerHashing(config, strategy, min_count)
            if layer.hashing.selection == "subspace":
                layer.hashing.set_subspace(*subspace, layer.weights)
            layer.hashing.rehash(layer.weights, layer.bias, _seed(random_state),
                                 n_threads)
    return Network(layers)
