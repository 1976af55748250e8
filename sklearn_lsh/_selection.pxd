# Active-set selection of a hashed layer: the method's central step.
from cython cimport floating

from ._common cimport layer_t, scratch_t
from ._typedefs cimport int32_t, int64_t, intp_t, uint64_t


# Write one sample's active neurons of a hashed layer to
# layer.ids[ii * width:], ascending, and return how many. The layer's input is
# in_dense[0:in_n] (a dense row; in_ids is then NULL) or the sparse row
# (in_ids, in_vals)[0:in_n]. labels[0:n_labels] (ascending) are always active.
# Reads the layer only; writes the sample's slots and the thread's scratch.
# Adds the hashing and query time to hash_seconds and the ranking's
# multiply-adds to rank_macs. The sample's activations row
# (layer.act[ii * width:]) is left holding, beside each active id, the
# pre-activation ranking computed, or NaN where none was.
cdef intp_t choose_active(
    const layer_t* layer,
    intp_t ii,
    const floating* in_dense,
    const int32_t* in_ids,
    const floating* in_vals,
    intp_t in_n,
    const int32_t* labels,
    intp_t n_labels,
    uint64_t rng_state,
    scratch_t* s,
    double* hash_seconds,
    int64_t* rank_macs,
) noexcept nogil
