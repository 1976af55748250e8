# OpenMP shim: the omp_* calls used by sklearn_lsh, with serial fallbacks when the
# extension is built without OpenMP (prange/parallel then compile to plain loops).
# omp_get_wtime is also the kernels' clock: portable where POSIX time is not.
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
        /* Serial builds time with the process clock (the same as wall time
           for one thread): portable C, unlike POSIX clock_gettime. */
        #include <time.h>
        #define omp_get_wtime() ((double) clock() / CLOCKS_PER_SEC)
    #endif
    """
    bint SKLEARN_LSH_OPENMP_PARALLELISM_ENABLED
    int omp_get_thread_num() noexcept nogil
    int omp_get_max_threads() noexcept nogil
    int omp_get_num_threads() noexcept nogil
    double omp_get_wtime() noexcept nogil
