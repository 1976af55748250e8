# One mini-batch step of a network with hashed layers (see _step.pyx).
from cython cimport floating

from ._common cimport batch_t, network_t
from ._optimizers cimport step_t


# Forward (and, if b.training, backward and the optimizer step of every
# touched row) over the batch b. False if a training batch's loss was not
# finite, and so no step was taken. tag: a zero of the network's dtype.
cdef bint train_batch(network_t* net, const batch_t* b, const step_t* st,
                      floating tag) noexcept nogil

# Bring every weight of the layers l with layers[l] != 0 (every layer if
# layers is NULL) to the end of st.step.
cdef void catch_up(network_t* net, const step_t* st, const unsigned char* layers,
                   floating tag) noexcept nogil
