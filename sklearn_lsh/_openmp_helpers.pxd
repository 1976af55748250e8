# OpenMP shim: the omp_* calls used by sklearn_lsh, with serial fallbacks when the
# extension is built without OpenMP (prange/parallel then compile to plain loops).
cdef extern from *:
    """
    #ifdef _OPENMP
        #include <omp.h>
        #define SKLEARN_LSH_OPENMP_PARALLELISM_ENABLED 1
    #else
        #define SKLEARN_LSH_OPENMP_PARALLELISM_ENABLED 0
        #define omp_get_thread_num() 0
        #define omp_get_max_threads() 1
        #define omp_get_num_threads() 1
    #endif
    """
    bint SKLEARN_LSH_OPENMP_PARALLELISM_ENABLED
    int omp_get_thread_num() noexcept nogil
    int omp_get_max_threads() noexcept nogil
    int omp_get_num_threads() noexcept nogil
