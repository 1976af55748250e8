# The C types the training kernels share (_selection, _network), and their
# small inline helpers. Arrays are owned by Python objects (the layers, the
# worker's scratch) that outlive every call which reads these structs.
from cython cimport floating
from scipy.linalg.cython_blas cimport daxpy, ddot, dgemm, saxpy, sdot, sgemm

from ._hashing cimport hash_family_t, simhash_by_product
from ._tables cimport query_scratch_t, tables_t
from ._typedefs cimport int32_t, int64_t, intp_t, key_t, stamp_t, uint64_t

# Activations (hidden and output), as the Python side names them in
# ACTIVATIONS (_network.pyx).
cdef enum:
    IDENTITY = 0
    LOGISTIC = 1
    TANH = 2
    RELU = 3
    SOFTMAX = 4
    EXP = 5


# Samples (forward, backward) or neurons (gradients) per matrix product of a
# dense layer over a dense input: fixed, so that a step's bits do not depend
# on how many threads share the blocks.
cdef enum:
    GEMM_BLOCK = 16


# One weight layer in a worker. Arrays of float or double (the network's
# dtype, the `floating` of the kernel that reads them) are void pointers.
cdef struct layer_t:
    intp_t n_out                 # neurons
    intp_t n_in                  # fan-in
    int activation
    bint hashed                  # computes an active set of its neurons
    bint gemm                    # dense, over a dense input: matrix products
    bint exact                   # hashed: the set by exact scores, no tables
    bint subspace                # hashed: candidates by scores in a subspace
    intp_t width                 # slot width per sample (n_out if dense)
    intp_t budget                # hashed: at most this many retrieved
    intp_t n_candidates          # hashed: retrieved, then the best budget kept
    intp_t min_active            # hashed: pad with random neurons up to this
    int strategy
    int min_count
    const hash_family_t* family  # hashed by tables only (NULL when exact)
    const tables_t* tables       # hashed by tables only (NULL when exact)
    # Tables over centered queries: [x - query_center, 1] is hashed (the
    # family has n_in + 1 features); NULL otherwise.
    const void* query_center     # (n_in,)
    # Float32 SimHash tables over a dense input: the batch's query keys,
    # (batch, n_tables), hashed SIMHASH_BLOCK slots at a time by one matrix
    # product before the slots' forward passes (see _step); NULL otherwise.
    key_t* batch_keys
    void* weights                # (n_out, n_in): a neuron's weights contiguous
    # A dense first layer over a sparse X stores its weights and moments by
    # input instead, (n_in, n_out): a non-zero input reads and steps one
    # contiguous row of n_out entries, not an entry of every neuron's row.
    bint by_input
    # Exact layers over a sparse input: the weights again, (n_in, n_out), so
    # that scoring every neuron streams one row per non-zero input instead of
    # gathering from every neuron's row; kept equal to weights by each step.
    void* weights_t
    void* bias                   # (n_out,)
    # Subspace layers: the candidates are the neurons of largest score
    # bias + offset + projected . (basis^T x - center), with basis (n_in, rank)
    # the input's principal directions and projected = weights . basis,
    # offset = weights . mean input as of the last refresh.
    intp_t rank
    const void* sub_basis        # (n_in, rank)
    const void* sub_center       # (rank,) basis^T mean input
    const void* sub_projected    # (n_out, rank)
    const void* sub_offset       # (n_out,)
    void* moment1_w              # Adam first moment / SGD velocity
    void* moment2_w              # Adam second moment (SGD: moment1_w again)
    void* moment1_b
    void* moment2_b
    int32_t* row_last            # (n_out,) each neuron's last step
    # Hashed layers fed a sparse input: each weight's last step (n_out, n_in);
    # dense layers fed a sparse input: each input's (n_in,); else NULL. Both
    # modulo 2**16 (stamp_t).
    stamp_t* entry_last
    stamp_t* col_last
    # Per-sample slots of the current batch.
    int32_t* ids                 # (batch, width) active ids, ascending
    intp_t* n_active             # (batch,)
    void* act                    # (batch, width)
    void* delta                  # (batch, width)
    int64_t* macs                # (batch,) forward multiply-adds, ranking too
    double* grad_bound           # (batch,) max |delta| x max(|input|, 1)
    # Regrouped (neuron -> slots) lists of a hashed layer, phase 2.
    int64_t* touched_offsets     # (n_out + 1,)
    int64_t* touched_slots       # (batch * width,) entries ii * width + a
    int32_t* touched             # (n_out,) the touched neurons
    intp_t n_touched
    # Regrouped (input -> (slot, value)) lists of a by_input layer, phase 2.
    int32_t* input_place         # (n_in,) an input's index in inputs, or -1
    int32_t* inputs              # (n_in,) the inputs the batch touched
    int64_t* input_offsets       # (n_in + 1,)
    int32_t* entry_slots         # (capacity,) each entry's slot, sample order
    void* entry_values           # (capacity,) and its input value
    intp_t n_inputs


# One thread's scratch, sized for the largest layer of the worker.
cdef struct scratch_t:
    double* hash_scratch
    int32_t* codes
    key_t* keys
    query_scratch_t query
    int32_t* retrieved           # a query's result (n_out of the widest layer)
    double* scores               # pre-activations of the retrieved, for ranking
    void* exact_scores           # (n_out) input part of every neuron's score
    void* sub_coords             # (rank) a subspace layer's input coordinates
    void* query_row              # (n_in + 1) a centered query
    float* query_block           # (SIMHASH_BLOCK, n_in + 1) queries, batch_keys
    float* hash_acc              # (SIMHASH_BLOCK, n_hashes) their projections
    int32_t* set_marker          # active-set membership, stamped
    int32_t set_stamp
    intp_t marker_size           # length of set_marker and query.tags
    int32_t* nz_ids              # non-zeros of a hashed layer's input
    void* nz_vals
    void* acc                    # gradient row (n_in), zero between rows
    void* grad_block             # (GEMM_BLOCK, fan-in) gradient rows, gemm
    int32_t* cols                # the entries of a sparse-input row touched
    int32_t* col_marker          # stamped membership of cols
    int32_t col_stamp
    intp_t col_marker_size


# The worker: its layers and one scratch per thread.
cdef struct network_t:
    layer_t* layers
    int n_layers
    scratch_t* scratch
    int n_threads


# One batch: the data (checked once per call by the worker) and its rows.
cdef struct batch_t:
    const intp_t* rows           # (n_samples,) rows of X in this batch
    intp_t n_samples
    const void* X                # dense (n_rows, n_features), or NULL for CSR
    void* X_batch                # (batch, n_features) its rows gathered (gemm)
    const void* X_data           # CSR X: canonical (sorted, no duplicates)
    const int32_t* X_indices
    const int64_t* X_indptr
    intp_t n_features
    const void* Y                # dense targets (n_rows, n_outputs), or NULL
    const int64_t* label_indptr  # label lists of a hashed output layer
    const int32_t* label_ids     # ascending within each row
    const double* sample_weight  # (n_rows,) float64, or NULL
    bint training
    uint64_t seed                # of the random padding of active sets
    double eps                   # of the loss's clipping
    double* sample_loss          # OUT (n_samples,)
    double* hash_seconds         # OUT (n_samples,)


cdef inline bint keys_by_block(const layer_t* layer) noexcept nogil:
    """Whether a layer's query keys are hashed a block of slots at a time
    before the slots' forward passes (_step._hash_block; see batch_keys)."""
    return layer.batch_keys != NULL and simhash_by_product(layer.family)


cdef inline floating dot(intp_t n, const floating* x,
                         const floating* y) noexcept nogil:
    cdef int n_ = <int> n, one = 1
    if floating is float:
        return sdot(&n_, <float*> x, &one, <float*> y, &one)
    else:
        return ddot(&n_, <double*> x, &one, <double*> y, &one)


cdef inline void axpy(intp_t n, floating alpha, const floating* x,
                      floating* y) noexcept nogil:
    cdef int n_ = <int> n, one = 1
    if floating is float:
        saxpy(&n_, &alpha, <float*> x, &one, y, &one)
    else:
        daxpy(&n_, &alpha, <double*> x, &one, y, &one)


cdef inline void gemm(char transa, char transb, intp_t m, intp_t n, intp_t k,
                      const floating* A, intp_t lda, const floating* B,
                      intp_t ldb, floating* C, intp_t ldc) noexcept nogil:
    """C = op(A) op(B) in BLAS's column-major terms (a row-major matrix is
    its transpose there), one thread."""
    cdef int m_ = <int> m, n_ = <int> n, k_ = <int> k
    cdef int lda_ = <int> lda, ldb_ = <int> ldb, ldc_ = <int> ldc
    cdef floating one = 1, zero = 0
    if floating is float:
        sgemm(&transa, &transb, &m_, &n_, &k_, &one, <float*> A, &lda_,
              <float*> B, &ldb_, &zero, C, &ldc_)
    else:
        dgemm(&transa, &transb, &m_, &n_, &k_, &one, <double*> A, &lda_,
              <double*> B, &ldb_, &zero, C, &ldc_)


cdef inline floating gather_dot(const floating* w, const int32_t* ids,
                                const floating* vals, intp_t n) noexcept nogil:
    # Four running sums: one would wait on the previous addition at every
    # entry (a few hundred per row of an image's non-zeros).
    cdef intp_t t, n4 = n - n % 4
    cdef floating s0 = 0, s1 = 0, s2 = 0, s3 = 0
    for t in range(0, n4, 4):
        s0 += w[ids[t]] * vals[t]
        s1 += w[ids[t + 1]] * vals[t + 1]
        s2 += w[ids[t + 2]] * vals[t + 2]
        s3 += w[ids[t + 3]] * vals[t + 3]
    for t in range(n4, n):
        s0 += w[ids[t]] * vals[t]
    return (s0 + s1) + (s2 + s3)
