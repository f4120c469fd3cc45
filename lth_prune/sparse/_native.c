/* lth_prune's C kernels, compiled on first use by lth_prune/sparse/_native.py (see there for why). */
#include <stdint.h>

/* On x86-64 each kernel is compiled three times, for the x86-64-v4 (AVX-512), v3 (AVX2) and
   baseline (SSE2) instruction sets, and the loader picks the widest the processor has (GCC's
   and clang's target_clones). The cast of a byte to a float is most of the loop's work: SSE2
   has no single instruction for it, AVX2 and AVX-512 widen 8 and 16 bytes at once. On the
   2-core benchmark machine (AMD EPYC, AVX-512) the 784 x 300 LeNet gradient took 4-6 us
   instead of 12-14 (cache-warm), and LeNet-300-100's masked training step was 1.02-1.04x of
   the dense step at every sparsity level (1.02-1.09x before, in two runs). Where clones
   cannot be built (an older compiler, or a C library without ifunc support), _native.py
   builds again with -DLTH_PRUNE_PORTABLE: one baseline loop. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(LTH_PRUNE_PORTABLE)
#define LTH_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define LTH_CLONES
#endif

/* values[i] *= keep[i] for every i < count, keep holding 0 or 1 per entry: the pruned
   entries become zero in one pass that reads one byte of mask per entry. The product, not a
   select, so that NaN and infinity at a pruned entry give NaN, exactly as torch's mul_. */
LTH_CLONES void lth_mask_float32(float *values, const uint8_t *keep, int64_t count) {
#pragma omp parallel for schedule(static) if (count >= 65536)
    for (int64_t i = 0; i < count; ++i) {
        values[i] *= (float)keep[i];
    }
}

LTH_CLONES void lth_mask_float64(double *values, const uint8_t *keep, int64_t count) {
#pragma omp parallel for schedule(static) if (count >= 65536)
    for (int64_t i = 0; i < count; ++i) {
        values[i] *= (double)keep[i];
    }
}
