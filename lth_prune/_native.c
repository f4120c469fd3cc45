/* lth_prune's C kernels, compiled on first use by lth_prune/_native.py (see there for why). */
#include <stdint.h>

/* values[i] *= keep[i] for every i < count, keep holding 0 or 1 per entry: the pruned
   entries become zero in one pass that reads one byte of mask per entry. The product, not a
   select, so that NaN and infinity at a pruned entry give NaN, exactly as torch's mul_. */
void lth_mask_float32(float *values, const uint8_t *keep, int64_t count) {
#pragma omp parallel for schedule(static) if (count >= 65536)
    for (int64_t i = 0; i < count; ++i) {
        values[i] *= (float)keep[i];
    }
}

void lth_mask_float64(double *values, const uint8_t *keep, int64_t count) {
#pragma omp parallel for schedule(static) if (count >= 65536)
    for (int64_t i = 0; i < count; ++i) {
        values[i] *= (double)keep[i];
    }
}
