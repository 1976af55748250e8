"""The compiled worker of a fit or predict call, and its boundary checks.

``BatchTrainer`` holds the C structs of the network's layers (over the arrays
the layers own) and one scratch per thread, and runs the kernels of ``_step``
one mini-batch per call. Every array the kernels read or write is checked
here, once, where it enters (``__init__``, ``set_hashing``, ``set_data``,
``run``): the kernels trust what they get. Steps are counted from the
worker's construction (``step_base`` is the optimizer's global step then).
"""
from libc.stdlib cimport calloc, free
from libc.string cimport memset

import numpy as np
import scipy.sparse as sp

from ._common cimport (
    EXP,
    GEMM_BLOCK,
    IDENTITY,
    LOGISTIC,
    RELU,
    SOFTMAX,
    TANH,
    batch_t,
    layer_t,
    network_t,
    scratch_t,
)
from ._hashing cimport (
    SIMHASH_BLOCK,
    HashFunctions,
    scratch_size,
    simhash_by_product,
)
from ._optimizers cimport GRADIENT, CatchUp, set_step, step_t
from ._step cimport catch_up, train_batch
from ._tables cimport THRESHOLD, TOPK, UNION, HashTables
from ._typedefs cimport int32_t, int64_t, intp_t, key_t, stamp_t, uint64_t

from ._openmp_helpers import per_thread_rows
from ._optimizers import SOLVERS, catch_up_tables

ACTIVATIONS = {"identity": IDENTITY, "logistic": LOGISTIC, "tanh": TANH,
               "relu": RELU, "softmax": SOFTMAX, "exp": EXP}
STRATEGIES = {"union": UNION, "topk": TOPK, "threshold": THRESHOLD}
# Most steps between two catch-ups of every weight: stamps count modulo
# 2**16 (stamp_t), so no weight may lag that many.
STAMP_PERIOD = 1 << 15
cdef int32_t INT32_MAX = 2147483647


# ---------------------------------------------------------------------------
# The boundary: every array the kernels touch is checked here, once.

def _checked(arr, name, shape, dtype, writeable=True):
    """``arr`` if it is a C-contiguous ndarray of that shape and dtype."""
    if (not isinstance(arr, np.ndarray) or arr.dtype != dtype
            or arr.shape != tuple(shape) or not arr.flags.c_contiguous
            or not arr.flags.aligned or (writeable and not arr.flags.writeable)):
        got = type(arr).__name__
        if isinstance(arr, np.ndarray):
            got = " ".join([f"{arr.dtype} {arr.shape}"] + [
                word for word, bad in (
                    ("not C-contiguous", not arr.flags.c_contiguous),
                    ("not aligned", not arr.flags.aligned),
                    ("read-only", writeable and not arr.flags.writeable)) if bad])
        raise ValueError(
            f"{name} must be a {'writeable ' if writeable else ''}C-contiguous "
            f"{np.dtype(dtype)} array of shape {tuple(shape)}, aligned; got {got}."
        )
    return arr


def stored_by_input(weights):
    """Whether a layer's (n_out, n_in) weights are the transpose of a
    C-contiguous (n_in, n_out) array (Fortran order), not a C-contiguous one."""
    return (isinstance(weights, np.ndarray) and weights.ndim == 2
            and weights.flags.f_contiguous and not weights.flags.c_contiguous)


def _checked_weights(arr, name, shape, dtype, writeable, by_input):
    """``_checked`` for a layer's (n_out, n_in) weights or moments; stored by
    input, their transpose must be C-contiguous (the same memory)."""
    if by_input:
        return _checked(arr.T if isinstance(arr, np.ndarray) else arr,
                        name + " (stored by input)", shape[::-1], dtype,
                        writeable).T
    return _checked(arr, name, shape, dtype, writeable)


cdef inline void* _ptr(arr) except? NULL:
    return NULL if arr is None else <void*> <intp_t> arr.ctypes.data


def _check_lists(indptr, ids, n_rows, n_items, name):
    """CSR row lists as int64 indptr (n_rows + 1,) and int32 ids in
    [0, n_items), strictly ascending within each row."""
    indptr, ids = np.asarray(indptr), np.asarray(ids)
    if (indptr.dtype.kind not in "iu" or ids.dtype.kind not in "iu"
            or indptr.shape != (n_rows + 1,) or ids.ndim != 1):
        raise ValueError(
            f"{name} indptr and ids must be 1-D integer arrays, indptr of shape "
            f"({n_rows + 1},); got {indptr.dtype} {indptr.shape} and {ids.dtype} "
            f"{ids.shape}."
        )
    if indptr[0] != 0 or (np.diff(indptr) < 0).any() or indptr[n_rows] > ids.size:
        raise ValueError(f"{name} indptr must start at 0, never decrease and end "
                         f"within the {ids.size} ids.")
    ids = ids[:indptr[n_rows]]
    if ids.size:
        if ids.min() < 0 or ids.max() >= n_items:
            raise ValueError(f"{name} ids must be in [0, {n_items}); got "
                             f"{ids.min() if ids.min() < 0 else ids.max()}.")
        step = np.diff(ids)
        row_start = np.zeros(ids.size, dtype=bool)
        starts = indptr[1:n_rows]
        row_start[starts[starts < ids.size]] = True
        if (step <= 0)[~row_start[1:]].any():
            raise ValueError(f"{name} ids must be strictly ascending within each "
                             "row (sorted, no duplicates).")
    return (np.ascontiguousarray(indptr, dtype=np.int64),
            np.ascontiguousarray(ids, dtype=np.int32))


cdef class BatchTrainer:
    """The per-fit worker: layer structs and scratch over the layers' arrays.

    Built at the start of ``fit``/``partial_fit`` over arrays that the model
    owns (weights, optimizer state, hash functions and tables); it holds no
    state of its own beyond scratch and the steps taken since it was built
    (each row's and each sparse-fed entry's last step), and is never pickled:
    ``catch_up`` at the end of a call leaves every weight where a dense
    optimizer would have it, so the model keeps only the step count.

    Parameters
    ----------
    layers : sequence of layer objects
        One per weight layer, with attributes ``weights`` (n_out, n_in),
        ``bias`` (n_out,), ``activation`` (str), the optimizer state
        ``moment1_w``, ``moment1_b`` and ``moment2_w``, ``moment2_b`` (same
        shapes as weights/bias; the second moments may be None, for SGD), and
        ``hashing``: None for a dense layer, else an object with ``selection``
        ('lsh'; 'exact': every neuron scored, no tables; 'subspace': every
        neuron scored in a subspace of the input, then the best ranked),
        ``functions`` (HashFunctions) and ``tables`` (HashTables) for 'lsh',
        ``rank``, ``basis``, ``center_coords``, ``projected`` and ``offset``
        for 'subspace' (see ``LayerHashing``), ``budget``,
        ``n_candidates`` (retrieved, ranked by pre-activation, the best
        ``budget`` kept), ``min_active``, ``strategy`` (str) and ``min_count``.
    batch_size : int
        The largest batch this worker will process.
    n_threads : int
        OpenMP threads.
    inference_only : bool, default=False
        Forward passes only (the weights may be read-only; no optimizer state
        is read).
    step_base : int, default=0
        The optimizer's global step when the worker is built (Adam's bias
        correction counts from it).
    sparse_input : bool, default=False
        Whether training batches may come as CSR rows (the first layer then
        tracks the last step of each input).
    max_labels : int, default=0
        The most labels a row has (room kept for them in a hashed output
        layer's active set).
    hash_output : bool, default=True
        Whether a hashed output layer selects its neurons; False computes
        every output (prediction).
    """

    cdef network_t net
    cdef intp_t batch_size
    cdef intp_t max_labels
    cdef bint inference_only
    cdef bint sparse_input
    cdef bint float32
    cdef readonly object dtype
    cdef list _keep                 # arrays the layer structs point into
    cdef list _hashing              # per layer: (functions, tables) or None
    cdef dict _data                 # the arrays of set_data
    cdef batch_t batch
    cdef readonly list n_active     # per layer (batch,) intp
    cdef readonly list macs         # per layer (batch,) int64
    cdef readonly list activations  # per layer (batch, width)
    cdef readonly list active_ids   # per layer (batch, width) int32 (hashed)
    cdef readonly list last_steps   # per layer (n_out,) int32 rows' last steps
    cdef readonly int32_t step      # steps taken since built
    cdef readonly bint diverged     # the last training run took no step
    cdef readonly int64_t step_base
    cdef intp_t _scratch_hash, _scratch_hashes, _scratch_tables, _scratch_rank
    cdef CatchUp _catch_up
    cdef tuple _catch_up_key
    cdef bint _stamped              # a layer stamps its weights (stamp_t)
    cdef bint _block_hash           # a layer hashes its queries by blocks
    cdef list _batch_keys_tables    # per layer: the tables batch_keys fits, or 0
    cdef int32_t _caught_up         # step of the last catch-up of every layer

    def __cinit__(self):
        self.net.layers = NULL
        self.net.scratch = NULL

    def __init__(self, layers, intp_t batch_size, int n_threads, *,
                 bint inference_only=False, int64_t step_base=0,
                 bint sparse_input=False, intp_t max_labels=0,
                 bint hash_output=True):
        cdef intp_t l, n_in, n_out, width, max_n = 1, max_in = 1, gemm_in = 1
        cdef layer_t* c
        if len(layers) == 0:
            raise ValueError("a network needs at least one layer")
        if batch_size < 1 or n_threads < 1 or max_labels < 0:
            raise ValueError("batch_size and n_threads must be >= 1, max_labels "
                             f">= 0; got {batch_size}, {n_threads}, {max_labels}.")
        self.batch_size = batch_size
        self.max_labels = max_labels
        self.inference_only = inference_only
        self.sparse_input = sparse_input
        self.step = 0
        self.step_base = step_base
        self._catch_up = CatchUp(None)
        self._catch_up_key = None
        self._caught_up = 0
        self.dtype = layers[0].weights.dtype
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"weights must be float32 or float64; got {self.dtype}.")
        self.float32 = self.dtype == np.float32
        self._keep = []
        self._data = None
        self._hashing = [None] * len(layers)
        self._scratch_hash = self._scratch_hashes = self._scratch_tables = 1
        self._scratch_rank = 1
        self._block_hash = False
        self._batch_keys_tables = [0] * len(layers)
        self.n_active, self.macs, self.activations, self.active_ids = [], [], [], []
        self.last_steps = []
        self.net.n_layers = len(layers)
        self.net.n_threads = n_threads
        self.net.layers = <layer_t*> calloc(self.net.n_layers, sizeof(layer_t))
        self.net.scratch = <scratch_t*> calloc(n_threads, sizeof(scratch_t))
        if self.net.layers == NULL or self.net.scratch == NULL:
            raise MemoryError()
        for l, layer in enumerate(layers):
            c = &self.net.layers[l]
            n_out, n_in = np.shape(layer.weights)
            if l > 0 and n_in != self.net.layers[l - 1].n_out:
                raise ValueError(f"layer {l} has {n_in} inputs; layer {l - 1} "
                                 f"has {self.net.layers[l - 1].n_out} outputs.")
            c.n_out, c.n_in = n_out, n_in
            if layer.activation not in ACTIVATIONS:
                raise ValueError(f"activation of layer {l} must be one of "
                                 f"{sorted(ACTIVATIONS)}; got {layer.activation!r}.")
            c.activation = ACTIVATIONS[layer.activation]
            self._point_arrays(l, layer)
            hashing = layer.hashing if hash_output or l < len(layers) - 1 else None
            c.hashed = hashing is not None
            width = n_out
            if c.hashed:
                c.budget = hashing.budget
                c.n_candidates = min(n_out, max(c.budget, hashing.n_candidates))
                c.min_active = hashing.min_active
                c.min_count = hashing.min_count
                if not (1 <= c.budget <= n_out and 0 <= c.min_active <= n_out
                        and c.min_count >= 1 and hashing.strategy in STRATEGIES):
                    raise ValueError(
                        f"layer {l}: budget {c.budget} and min_active "
                        f"{c.min_active} must be in [1, {n_out}] and [0, {n_out}], "
                        f"min_count {c.min_count} >= 1 and strategy one of "
                        f"{sorted(STRATEGIES)} (got {hashing.strategy!r}).")
                c.strategy = STRATEGIES[hashing.strategy]
                # Room for the labels, which come on top of the budget.
                width = min(n_out, c.budget + (max_labels if l == len(layers) - 1
                                               else 0))
                width = max(width, c.min_active)
                c.exact = hashing.selection == "exact"
                if c.exact:
                    c.n_candidates = n_out  # every neuron, scored exactly
                    if self._reads_sparse(l):
                        # Built from the weights checked above; the steps of
                        # this worker keep it equal to them.
                        weights_t = np.ascontiguousarray(
                            np.asarray(layer.weights).T, dtype=self.dtype)
                        c.weights_t = _ptr(weights_t)
                        self._keep.append(weights_t)
                elif hashing.selection == "subspace":
                    self._point_subspace(l, hashing)
                else:
                    center = getattr(hashing, "query_center", None)
                    if center is not None:
                        if self._reads_sparse(l):
                            raise ValueError(
                                f"layer {l} centers its queries, which needs a "
                                "dense input; its input is sparse.")
                        center = _checked(center, f"query_center of layer {l}",
                                          (n_in,), self.dtype, writeable=False)
                        c.query_center = _ptr(center)
                        self._keep.append(center)
                    self._grow_hash_scratch(hashing.functions)
                    self._set_hashing(l, hashing.functions, hashing.tables)
                    if self.float32 and not self._reads_sparse(l) and \
                            simhash_by_product(&(<HashFunctions> hashing.functions).c):
                        keys = np.zeros((batch_size, hashing.functions.n_tables),
                                        dtype=np.uint32)
                        c.batch_keys = <key_t*> _ptr(keys)
                        self._keep.append(keys)
                        self._batch_keys_tables[l] = hashing.functions.n_tables
                        self._block_hash = True
            c.width = width
            # A dense X is gathered for the first layer; a worker built for
            # CSR batches keeps its first layer per sample.
            c.gemm = not c.hashed and (not self.net.layers[l - 1].hashed if l > 0
                                       else not sparse_input)
            if c.gemm and not inference_only:
                gemm_in = max(gemm_in, n_in)
            max_n = max(max_n, n_out)
            max_in = max(max_in, n_in)
            self._slots(l, c)
        self._scratch(max_n, max_in, gemm_in)
        self._stamped = False
        for l in range(self.net.n_layers):
            if (self.net.layers[l].entry_last != NULL
                    or self.net.layers[l].col_last != NULL):
                self._stamped = True

    cdef _point_subspace(self, intp_t l, hashing):
        """Point a subspace layer at its basis and projected weights."""
        cdef layer_t* c = &self.net.layers[l]
        rank = hashing.rank
        arrays = [_checked(getattr(hashing, name), f"{name} of layer {l}", shape,
                           self.dtype, writeable=False)
                  for name, shape in (("basis", (c.n_in, rank)),
                                      ("center_coords", (rank,)),
                                      ("projected", (c.n_out, rank)),
                                      ("offset", (c.n_out,)))]
        c.subspace = True
        c.rank = rank
        c.sub_basis = _ptr(arrays[0])
        c.sub_center = _ptr(arrays[1])
        c.sub_projected = _ptr(arrays[2])
        c.sub_offset = _ptr(arrays[3])
        self._keep += arrays
        self._scratch_rank = max(self._scratch_rank, rank)

    cdef bint _reads_sparse(self, intp_t l):
        """Whether layer l's input is sparse: CSR X, or a hashed layer's
        active outputs (layers below l must be set up)."""
        return self.sparse_input if l == 0 else self.net.layers[l - 1].hashed

    cdef _point_arrays(self, intp_t l, layer):
        """Check the layer's parameters and optimizer state; point at them."""
        cdef layer_t* c = &self.net.layers[l]
        shape_w, shape_b = (c.n_out, c.n_in), (c.n_out,)
        writeable = not self.inference_only
        c.by_input = l == 0 and layer.hashing is None and stored_by_input(layer.weights)
        if c.by_input and not self.sparse_input and not self.inference_only:
            raise ValueError("the first layer's weights are stored by input (for "
                             "a sparse X); training on a dense X needs them by "
                             "neuron (Network.store_first_layer).")
        W = _checked_weights(layer.weights, f"weights of layer {l}", shape_w,
                             self.dtype, writeable, c.by_input)
        b = _checked(layer.bias, f"bias of layer {l}", shape_b, self.dtype, writeable)
        c.weights = _ptr(W)
        c.bias = _ptr(b)
        self._keep += [W, b]
        if self.inference_only:
            return
        state = {}
        for name, shape in (("moment1_w", shape_w), ("moment1_b", shape_b),
                            ("moment2_w", shape_w), ("moment2_b", shape_b)):
            arr = getattr(layer, name)
            if arr is None and name.startswith("moment2"):
                arr = state["moment1" + name[7:]]  # SGD: no second moment
            if name.endswith("w"):
                state[name] = _checked_weights(arr, f"{name} of layer {l}", shape,
                                               self.dtype, True, c.by_input)
            else:
                state[name] = _checked(arr, f"{name} of layer {l}", shape,
                                       self.dtype)
        c.moment1_w = _ptr(state["moment1_w"])
        c.moment2_w = _ptr(state["moment2_w"])
        c.moment1_b = _ptr(state["moment1_b"])
        c.moment2_b = _ptr(state["moment2_b"])
        self._keep.append(state)
        row_last = np.zeros(c.n_out, dtype=np.int32)
        c.row_last = <int32_t*> _ptr(row_last)
        self.last_steps.append(row_last)
        self._keep.append(row_last)
        # A sparse input steps some entries of a row and not others.
        if self._reads_sparse(l):
            if layer.hashing is not None:
                # Two bytes a weight (a 100,000 x 2,048 layer: 410 MB).
                last = np.zeros((c.n_out, c.n_in), dtype=np.uint16)
                c.entry_last = <stamp_t*> _ptr(last)
            else:
                last = np.zeros(c.n_in, dtype=np.uint16)
                c.col_last = <stamp_t*> _ptr(last)
            self._keep.append(last)
        if c.by_input:
            lists = {"place": np.full(c.n_in, -1, dtype=np.int32),
                     "inputs": np.zeros(c.n_in, dtype=np.int32),
                     "offsets": np.zeros(c.n_in + 1, dtype=np.int64)}
            c.input_place = <int32_t*> _ptr(lists["place"])
            c.inputs = <int32_t*> _ptr(lists["inputs"])
            c.input_offsets = <int64_t*> _ptr(lists["offsets"])
            self._keep.append(lists)

    cdef _slots(self, intp_t l, layer_t* c):
        """The per-sample slots of a layer, and its regroup lists."""
        ids = np.zeros((self.batch_size, c.width), dtype=np.int32)
        n_active = np.zeros(self.batch_size, dtype=np.intp)
        act = np.zeros((self.batch_size, c.width), dtype=self.dtype)
        delta = np.zeros((self.batch_size, c.width), dtype=self.dtype)
        macs = np.zeros(self.batch_size, dtype=np.int64)
        grad_bound = np.zeros(self.batch_size, dtype=np.float64)
        offsets = np.zeros(c.n_out + 1 if c.hashed else 1, dtype=np.int64)
        slots = np.zeros(self.batch_size * c.width if c.hashed else 1, dtype=np.int64)
        touched = np.zeros(c.n_out if c.hashed else 1, dtype=np.int32)
        c.ids = <int32_t*> _ptr(ids)
        c.n_active = <intp_t*> _ptr(n_active)
        c.act = _ptr(act)
        c.delta = _ptr(delta)
        c.macs = <int64_t*> _ptr(macs)
        c.grad_bound = <double*> _ptr(grad_bound)
        c.touched_offsets = <int64_t*> _ptr(offsets)
        c.touched_slots = <int64_t*> _ptr(slots)
        c.touched = <int32_t*> _ptr(touched)
        self._keep += [ids, n_active, act, delta, macs, grad_bound, offsets, slots,
                       touched]
        self.n_active.append(n_active)
        self.macs.append(macs)
        self.activations.append(act)
        self.active_ids.append(ids if c.hashed else None)

    cdef _grow_hash_scratch(self, HashFunctions functions):
        self._scratch_hash = max(self._scratch_hash, scratch_size(&functions.c))
        self._scratch_hashes = max(self._scratch_hashes, functions.n_hashes)
        self._scratch_tables = max(self._scratch_tables, functions.n_tables)

    cdef _scratch(self, intp_t max_n, intp_t max_in, intp_t gemm_in):
        """One zeroed row per thread of each buffer, rows a cache line apart."""
        cdef int tid
        cdef scratch_t* s
        sizes = {
            "hash": (self._scratch_hash, np.float64),
            "codes": (self._scratch_hashes, np.int32),
            "keys": (self._scratch_tables, np.uint32),
            "tags": (max_n, np.int32), "counts": (max_n, np.int32),
            "candidates": (max_n + 1, np.int32), "retrieved": (max_n, np.int32),
            "scores": (max_n, np.float64),
            "exact_scores": (max_n, self.dtype),
            "sub_coords": (self._scratch_rank, self.dtype),
            "query_row": (max_in + 1, self.dtype),
            "query_block": (SIMHASH_BLOCK * (max_in + 1)
                            if self._block_hash else 1, np.float32),
            "hash_acc": (SIMHASH_BLOCK * self._scratch_hashes
                         if self._block_hash else 1, np.float32),
            "set_marker": (max_n, np.int32),
            "nz_ids": (max(max_in, max_n), np.int32),
            "nz_vals": (max(max_in, max_n), self.dtype),
            # A gradient row: a neuron's (n_in), or an input's (n_out) in a
            # layer stored by input.
            "acc": (max(max_in, max_n), self.dtype), "cols": (max_in, np.int32),
            "grad_block": (GEMM_BLOCK * gemm_in, self.dtype),
            "col_marker": (max_in, np.int32),
        }
        rows = {name: per_thread_rows(self.net.n_threads, size, dtype)
                for name, (size, dtype) in sizes.items()}
        self._keep.append(rows)
        for tid in range(self.net.n_threads):
            s = &self.net.scratch[tid]
            s.hash_scratch = <double*> _ptr(rows["hash"][tid])
            s.codes = <int32_t*> _ptr(rows["codes"][tid])
            s.keys = <key_t*> _ptr(rows["keys"][tid])
            s.query.tags = <int32_t*> _ptr(rows["tags"][tid])
            s.query.counts = <int32_t*> _ptr(rows["counts"][tid])
            s.query.candidates = <int32_t*> _ptr(rows["candidates"][tid])
            s.query.stamp = 0
            s.retrieved = <int32_t*> _ptr(rows["retrieved"][tid])
            s.scores = <double*> _ptr(rows["scores"][tid])
            s.exact_scores = _ptr(rows["exact_scores"][tid])
            s.sub_coords = _ptr(rows["sub_coords"][tid])
            s.query_row = _ptr(rows["query_row"][tid])
            s.query_block = <float*> _ptr(rows["query_block"][tid])
            s.hash_acc = <float*> _ptr(rows["hash_acc"][tid])
            s.set_marker = <int32_t*> _ptr(rows["set_marker"][tid])
            s.set_stamp = 0
            s.marker_size = max_n
            s.nz_ids = <int32_t*> _ptr(rows["nz_ids"][tid])
            s.nz_vals = _ptr(rows["nz_vals"][tid])
            s.acc = _ptr(rows["acc"][tid])
            s.grad_block = _ptr(rows["grad_block"][tid])
            s.cols = <int32_t*> _ptr(rows["cols"][tid])
            s.col_marker = <int32_t*> _ptr(rows["col_marker"][tid])
            s.col_stamp = 0
            s.col_marker_size = max_in

    def __dealloc__(self):
        free(self.net.layers)
        free(self.net.scratch)

    cdef _set_hashing(self, intp_t l, HashFunctions functions, HashTables tables):
        cdef layer_t* c = &self.net.layers[l]
        # A centered query has one more coordinate.
        cdef intp_t n_features = c.n_in + (c.query_center != NULL)
        if (functions.n_features != n_features or tables.n_items != c.n_out
                or tables.n_tables != functions.n_tables
                or tables.n_buckets != functions.n_buckets):
            raise ValueError(
                f"layer {l} ({n_features} hashed inputs, {c.n_out} neurons) cannot "
                f"use hash functions of {functions.n_features} features, "
                f"{functions.n_tables} "
                f"tables of {functions.n_buckets} buckets with tables of "
                f"{tables.n_items} items, {tables.n_tables} tables of "
                f"{tables.n_buckets} buckets."
            )
        if (scratch_size(&functions.c) > self._scratch_hash
                or functions.n_hashes > self._scratch_hashes
                or functions.n_tables > self._scratch_tables):
            raise ValueError(
                f"the hash functions of layer {l} need more scratch than this "
                "worker was built with; build a new worker."
            )
        if c.batch_keys != NULL and functions.n_tables != self._batch_keys_tables[l]:
            raise ValueError(
                f"layer {l} hashes its batches' queries into "
                f"{self._batch_keys_tables[l]} tables; functions of "
                f"{functions.n_tables} need a new worker."
            )
        c.family = &functions.c
        c.tables = &tables.c
        # The old pair is released here: only the current one is kept.
        self._hashing[l] = (functions, tables)

    def set_hashing(self, intp_t layer, HashFunctions functions, HashTables tables):
        """Point a layer hashed by tables at new hash functions and tables."""
        if (not 0 <= layer < self.net.n_layers or not self.net.layers[layer].hashed
                or self.net.layers[layer].exact
                or self.net.layers[layer].subspace):
            raise ValueError(f"layer {layer} is not a layer of this worker that "
                             "retrieves through tables")
        self._set_hashing(layer, functions, tables)

    def set_data(self, X, Y=None, label_indptr=None, label_ids=None,
                 sample_weight=None):
        """Check the data of the coming batches and keep them.

        Parameters
        ----------
        X : ndarray of shape (n_rows, n_features) or CSR matrix
            In the weights' dtype: C-contiguous if dense; CSR with int32
            indices, int64 indptr and canonical rows (sorted, no duplicates).
        Y : ndarray of shape (n_rows, n_outputs), default=None
            Dense targets, for training a dense output layer.
        label_indptr, label_ids : ndarray, default=None
            Each row's label ids (int64 indptr, int32 ids ascending within a
            row), for training a hashed output layer.
        sample_weight : ndarray of shape (n_rows,), default=None
            Non-negative sample weights.
        """
        cdef layer_t* first = &self.net.layers[0]
        cdef layer_t* last = &self.net.layers[self.net.n_layers - 1]
        data = {}
        if sp.issparse(X):
            if X.format != "csr" or X.ndim != 2 or X.shape[1] != first.n_in:
                raise ValueError(f"X must be a CSR matrix of {first.n_in} columns; "
                                 f"got {X.format} {X.shape}.")
            n_rows = X.shape[0]
            indptr, indices = _check_lists(X.indptr, X.indices, n_rows, first.n_in,
                                           "X")
            data["X_indptr"], data["X_indices"] = indptr, indices
            data["X_data"] = _checked(X.data[:indices.shape[0]], "X data",
                                      indices.shape, self.dtype, False)
            if first.by_input and not self.inference_only:
                # Room for the entries of any batch: its rows' lengths at most
                # the batch_size largest.
                lengths = np.diff(indptr)
                k = min(self.batch_size, n_rows)
                room = int(np.partition(lengths, n_rows - k)[n_rows - k:].sum()
                           ) if k else 0
                data["entry_slots"] = np.zeros(max(room, 1), dtype=np.int32)
                data["entry_values"] = np.zeros(max(room, 1), dtype=self.dtype)
                first.entry_slots = <int32_t*> _ptr(data["entry_slots"])
                first.entry_values = _ptr(data["entry_values"])
            if indices.size == 0:  # keep the pointers valid
                data["X_indices"] = np.zeros(1, np.int32)
                data["X_data"] = np.zeros(1, self.dtype)
        else:
            n_rows = np.shape(X)[0] if np.ndim(X) == 2 else -1
            data["X"] = _checked(X, "X", (n_rows, first.n_in), self.dtype, False)
            if first.gemm:
                data["X_batch"] = np.empty((self.batch_size, first.n_in), self.dtype)
        if Y is not None:
            data["Y"] = _checked(Y, "Y", (n_rows, last.n_out), self.dtype, False)
        if label_indptr is not None or label_ids is not None:
            data["label_indptr"], data["label_ids"] = _check_lists(
                label_indptr, label_ids, n_rows, last.n_out, "label")
            # Labels are written into a hashed output layer's active set.
            most = int(np.diff(data["label_indptr"]).max(initial=0))
            if last.hashed and most > last.width:
                raise ValueError(
                    f"a row has {most} labels; the output layer's active set "
                    f"holds at most {last.width} (max_labels={self.max_labels}).")
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight)
            data["sample_weight"] = _checked(
                np.ascontiguousarray(sample_weight, dtype=np.float64),
                "sample_weight", (n_rows,), np.float64, False)
            if (sample_weight < 0).any():
                raise ValueError("sample_weight must be non-negative.")
        self._data = data
        self._data["n_rows"] = n_rows
        self.batch.X = _ptr(data.get("X"))
        self.batch.X_batch = _ptr(data.get("X_batch"))
        self.batch.X_data = _ptr(data.get("X_data"))
        self.batch.X_indices = <int32_t*> _ptr(data.get("X_indices"))
        self.batch.X_indptr = <int64_t*> _ptr(data.get("X_indptr"))
        self.batch.n_features = first.n_in
        self.batch.Y = _ptr(data.get("Y"))
        self.batch.label_indptr = <int64_t*> _ptr(data.get("label_indptr"))
        self.batch.label_ids = <int32_t*> _ptr(data.get("label_ids"))
        self.batch.sample_weight = <double*> _ptr(data.get("sample_weight"))
        self.batch.eps = np.finfo(self.dtype).eps

    cdef const step_t* _step(self, step_t* st, dict params) except? NULL:
        """Fill st from the optimizer parameters of run/catch_up."""
        solver = params.get("solver", "adam")
        if solver not in SOLVERS:
            raise ValueError(f"solver must be one of {sorted(SOLVERS)}; got "
                             f"{solver!r}.")
        beta_1 = float(params.get("beta_1", 0.9))
        beta_2 = float(params.get("beta_2", 0.999))
        momentum = float(params.get("momentum", 0.9))
        nesterov = bool(params.get("nesterov", True))
        key = (solver, beta_1, beta_2, momentum, nesterov)
        if key != self._catch_up_key:
            self._catch_up = CatchUp(
                None if solver == "gradient" else
                catch_up_tables(solver, beta_1, beta_2, momentum, nesterov))
            self._catch_up_key = key
        st.solver = SOLVERS[solver]
        st.scale = float(params.get("scale", 1.0))
        st.alpha = float(params.get("alpha", 0.0))
        st.learning_rate = float(params.get("learning_rate", 1e-3))
        st.beta_1 = beta_1
        st.beta_2 = beta_2
        st.epsilon = float(params.get("epsilon", 1e-8))
        st.momentum = momentum
        st.nesterov = nesterov
        st.step_base = self.step_base
        set_step(st, self.step)
        st.catch_up = self._catch_up.pointer()
        return st

    cdef bint _kernel(self, bint flush, const step_t* st,
                      const unsigned char* layers=NULL):
        """The float/double dispatch of the kernels, in one place. False if a
        training batch's loss was not finite (no step taken)."""
        cdef bint stepped = True
        if self.float32:
            with nogil:
                if flush:
                    catch_up(&self.net, st, layers, <float> 0)
                else:
                    stepped = train_batch(&self.net, &self.batch, st, <float> 0)
        else:
            with nogil:
                if flush:
                    catch_up(&self.net, st, layers, <double> 0)
                else:
                    stepped = train_batch(&self.net, &self.batch, st, <double> 0)
        return stepped

    def catch_up(self, layers=None, **params):
        """Bring the weights to the end of the last step.

        The rows and entries no gradient reached since their last step take
        the skipped steps in closed form, as a dense optimizer would have. Call
        it before the weights are read (evaluation, a table rebuild, the end of
        a fit call). ``layers``: the indices of the layers to bring up (None:
        every layer). Other parameters as in ``run``.
        """
        if self.inference_only:
            raise ValueError("this worker was built for inference only")
        cdef step_t st
        cdef unsigned char[::1] chosen = np.ones(self.net.n_layers, dtype=np.uint8)
        if layers is not None:
            chosen[:] = 0
            for l in layers:
                chosen[l] = 1
        self._step(&st, params)
        if st.catch_up != NULL:
            self._kernel(True, &st, &chosen[0])
            if layers is None:
                self._caught_up = self.step

    def run(self, rows, *, bint training=True, uint64_t seed=0, **params):
        """Process one batch of the rows of ``set_data``: forward (and, if
        training, backward and update).

        Parameters
        ----------
        rows : ndarray of shape (n_batch,), dtype intp
            The rows of X in this batch.
        training : bool, default=True
            If False, only the forward pass through the active sets runs.
        seed : int, default=0
            Seed of the random padding of active sets in this batch.
        **params
            The optimizer step: ``solver`` ('adam', 'sgd' or 'gradient'),
            ``scale`` (1 / sum of the batch's sample weights), ``alpha``,
            ``learning_rate``, ``beta_1``, ``beta_2``, ``epsilon``,
            ``momentum``, ``nesterov``.

        Returns
        -------
        sample_loss : ndarray of shape (n_batch,)
            Each sample's weighted loss over its active outputs. If that of a
            training row of non-zero weight is not finite, or a gradient might
            not be, the batch takes no step (no weight, moment or step count
            changes) and ``diverged`` is set.
        hash_seconds : ndarray of shape (n_batch,)
            Time spent hashing and querying tables for each sample.
        """
        cdef layer_t* last = &self.net.layers[self.net.n_layers - 1]
        cdef step_t st
        memset(&st, 0, sizeof(step_t))
        st.solver = GRADIENT  # takes no step unless training fills it
        if self._data is None:
            raise ValueError("set_data must be called before run")
        if training and self.inference_only:
            raise ValueError("this worker was built for inference only")
        rows = _checked(rows, "rows", (np.shape(rows)[0] if np.ndim(rows) == 1
                                       else -1,), np.intp, False)
        n_batch = rows.shape[0]
        if n_batch > self.batch_size:
            raise ValueError(f"batch of {n_batch} rows exceeds the worker's "
                             f"{self.batch_size}")
        if n_batch and (rows.min() < 0 or rows.max() >= self._data["n_rows"]):
            raise ValueError(f"rows must be in [0, {self._data['n_rows']}).")
        if training:
            if last.hashed and "label_indptr" not in self._data:
                raise ValueError("a hashed output layer needs label_indptr/label_ids")
            if not last.hashed and "Y" not in self._data:
                raise ValueError("a dense output layer needs Y")
            if "X" not in self._data and not self.sparse_input:
                raise ValueError("this worker was built for dense X "
                                 "(sparse_input=False)")
            self._step(&st, params)
            if st.solver != GRADIENT and self.step == INT32_MAX:
                raise OverflowError("a worker takes at most 2**31 - 1 steps")
            if (self._stamped and st.catch_up != NULL
                    and self.step - self._caught_up >= STAMP_PERIOD):
                # Every weight to the end of the last step, before the oldest
                # stamp could be read as a recent one.
                self._kernel(True, &st)
                self._caught_up = self.step
        sample_loss = np.zeros(n_batch, dtype=np.float64)
        hash_seconds = np.zeros(n_batch, dtype=np.float64)
        self.batch.rows = <intp_t*> _ptr(rows)
        self.batch.n_samples = n_batch
        self.batch.training = training
        self.batch.seed = seed
        self.batch.sample_loss = <double*> _ptr(sample_loss)
        self.batch.hash_seconds = <double*> _ptr(hash_seconds)
        # Counted once the batch is sure to run: a refused call takes no step.
        if training and st.solver != GRADIENT:
            self.step += 1
            set_step(&st, self.step)
        self.diverged = not self._kernel(False, &st)
        if self.diverged and training and st.solver != GRADIENT:
            self.step -= 1
        return sample_loss, hash_seconds
