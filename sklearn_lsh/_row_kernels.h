/* Adam's loops over whole parameter rows, for _optimizers.pyx.
 *
 * Compiled twice, for the baseline x86-64 and for AVX2, the copy chosen when
 * the module loads (target_clones, on glibc x86-64 with GCC or Clang). Adam's
 * row step is bound by its square roots and divisions, which AVX2 does eight
 * at a time. Every operation is an element-wise IEEE one in the row's
 * precision, so both copies give the same bits. FMA is left out of the
 * clones on purpose: contracting a * b + c would change them.
 */
#ifndef SKLEARN_LSH_ROW_KERNELS_H
#define SKLEARN_LSH_ROW_KERNELS_H

#include <math.h>
#include <stddef.h>

#if defined(__x86_64__) && defined(__GLIBC__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define LSH_ROW_CLONES __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef LSH_ROW_CLONES
#define LSH_ROW_CLONES
#endif

/* GCC would move the zeroing of grad out of the loop into a call to memset:
 * a second pass, and a call per row (per bias: four bytes). */
#if defined(__GNUC__) && !defined(__clang__)
#define LSH_ROW_NO_MEMSET __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define LSH_ROW_NO_MEMSET
#endif

/* The moves of skipped steps on entry j (see _optimizers._adam_skip). */
#define LSH_ADAM_SKIP_ENTRY(SQRT)                                             \
    param[j] -= move * m[j] / (SQRT(v[j]) + epsilon);                         \
    m[j] *= decay_1;                                                          \
    v[j] *= decay_2;

/* One Adam step on entry j, in the order NumPy computes scikit-learn's
 * AdamOptimizer in the row's precision; grad[j] is zeroed. */
#define LSH_ADAM_STEP_ENTRY(T, SQRT)                                          \
    {                                                                         \
        T g = scale * (grad[j] + alpha * param[j]);                           \
        grad[j] = 0;                                                          \
        m[j] = beta_1 * m[j] + one_minus_beta_1 * g;                          \
        v[j] = beta_2 * v[j] + one_minus_beta_2 * (g * g);                    \
        param[j] -= lr * m[j] / (SQRT(v[j]) + epsilon);                       \
    }

#define LSH_ADAM_STEP_ARGS(T)                                                 \
    T *restrict param, T *restrict m, T *restrict v, T *restrict grad,        \
    ptrdiff_t n, T scale, T alpha, T lr, T beta_1, T one_minus_beta_1,        \
    T beta_2, T one_minus_beta_2, T epsilon

/* A step of every entry of a row. */
#define LSH_ADAM_DENSE_ROW(NAME, T, SQRT)                                     \
    LSH_ROW_CLONES LSH_ROW_NO_MEMSET static void NAME(LSH_ADAM_STEP_ARGS(T))  \
    {                                                                         \
        for (ptrdiff_t j = 0; j < n; j++) LSH_ADAM_STEP_ENTRY(T, SQRT)        \
    }

/* The moves of skipped steps, then a step, of every entry of a row: one pass
 * (the same operations per entry as the two loops, so the same bits). */
#define LSH_ADAM_SKIP_DENSE_ROW(NAME, T, SQRT)                                \
    LSH_ROW_CLONES LSH_ROW_NO_MEMSET static void NAME(                        \
        LSH_ADAM_STEP_ARGS(T), T move, T decay_1, T decay_2)                  \
    {                                                                         \
        for (ptrdiff_t j = 0; j < n; j++) {                                   \
            LSH_ADAM_SKIP_ENTRY(SQRT)                                         \
            LSH_ADAM_STEP_ENTRY(T, SQRT)                                      \
        }                                                                     \
    }

/* The moves of skipped steps on every entry of a row. */
#define LSH_ADAM_SKIP_ROW(NAME, T, SQRT)                                      \
    LSH_ROW_CLONES static void NAME(                                          \
        T *restrict param, T *restrict m, T *restrict v, ptrdiff_t n,         \
        T move, T decay_1, T decay_2, T epsilon)                              \
    {                                                                         \
        for (ptrdiff_t j = 0; j < n; j++) {                                   \
            LSH_ADAM_SKIP_ENTRY(SQRT)                                         \
        }                                                                     \
    }

LSH_ADAM_DENSE_ROW(lsh_adam_dense_row_f32, float, sqrtf)
LSH_ADAM_DENSE_ROW(lsh_adam_dense_row_f64, double, sqrt)
LSH_ADAM_SKIP_DENSE_ROW(lsh_adam_skip_dense_row_f32, float, sqrtf)
LSH_ADAM_SKIP_DENSE_ROW(lsh_adam_skip_dense_row_f64, double, sqrt)
LSH_ADAM_SKIP_ROW(lsh_adam_skip_row_f32, float, sqrtf)
LSH_ADAM_SKIP_ROW(lsh_adam_skip_row_f64, double, sqrt)

#endif
