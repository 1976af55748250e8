# Fixed-width types shared by the Cython modules.
from libc.stdint cimport int8_t, int32_t, int64_t, uint16_t, uint32_t, uint64_t

ctypedef double float64_t
ctypedef float float32_t
ctypedef Py_ssize_t intp_t
# Bucket keys: at most 32 bits per table.
ctypedef uint32_t key_t
# A weight's last step, modulo 2**16: the worker brings every weight up
# to date before any can lag 2**16 steps (BatchTrainer.run).
ctypedef uint16_t stamp_t
