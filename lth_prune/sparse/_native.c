/* lth_prune's C kernels, compiled on first use by lth_prune/sparse/_native.py (see there for why). */
#include <stdint.h>

/* On x86-64 each kernel is compiled three times, for the x86-64-v4 (AVX-512), v3 (AVX2) and
   baseline (SSE2) instruction sets, and the loader picks the widest the processor has (GCC's
   and clang's target_clones). Turning mask bytes into per-lane selections is most of the
   loop's work: SSE2 handles 4 lanes at a time, AVX2 and AVX-512 8 and 16. On the 2-core
   benchmark machine (AMD EPYC, AVX-512) the 784 x 300 LeNet gradient took 4-6 us instead of
   12-14 (cache-warm), and LeNet-300-100's masked training step was 1.02-1.04x of the dense
   step at every sparsity level (1.02-1.09x before, in two runs); those runs timed the earlier
   multiplying loop, see below for the select's time against it. Where clones
   cannot be built (an older compiler, or a C library without ifunc support), _native.py
   builds again with -DLTH_PRUNE_PORTABLE: one baseline loop. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(LTH_PRUNE_PORTABLE)
#define LTH_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define LTH_CLONES
#endif

/* values[i] = keep[i] ? values[i] : 0 for every i < count: the pruned entries become +0.0 in
   one pass that reads one byte of mask per entry. A select, not a product: NaN * 0 is NaN, so a
   product would let a NaN or infinite gradient at a pruned entry through to the optimizer. The
   compilers turn the select into a compare and a blend (or a masked move) as they turned the
   product into a widening and a multiply, and it was not slower: over the 784 x 300 LeNet
   gradient (30 % kept, one thread, a 2-core Intel Xeon with AVX-512, GCC 12) 17 us against the
   product's 18 with the clones, 24 against 29 with the portable loop; over 4096 x 4096, 10.8 ms
   against 12.2 (clones) and 20.0 against 19.2 (portable).
   Any nonzero byte keeps its entry; kept entries keep their bits (-0.0 and NaN payloads too). */
LTH_CLONES void lth_mask_float32(float *values, const uint8_t *keep, int64_t count) {
#pragma omp parallel for schedule(static) if (count >= 65536)
    for (int64_t i = 0; i < count; ++i) {
        values[i] = keep[i] ? values[i] : 0.0f;
    }
}

LTH_CLONES void lth_mask_float64(double *values, const uint8_t *keep, int64_t count) {
#pragma omp parallel for schedule(static) if (count >= 65536)
    for (int64_t i = 0; i < count; ++i) {
        values[i] = keep[i] ? values[i] : 0.0;
    }
}
