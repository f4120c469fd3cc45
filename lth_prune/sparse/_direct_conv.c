/* Direct sparse 2-d convolution, compiled on first use by lth_prune/sparse/_direct_conv.py.

   The weight of output channel o is its list of nonzero taps (input channel, ky, kx) with their
   values: row o of the CSR matrix of the weight reshaped (out, in / groups * kh * kw), columns
   increasing, so a channel's taps walk its input planes forward. Each output is the bias plus
   one product per tap with a shifted window of the input; no unfolded patches.

   The input is first copied into a window buffer Q in which every tap is one constant offset
   from the output position:
   - the zero padding is written into Q, so no tap needs a bounds check;
   - a stride s is undone by splitting each padded input plane into its s x s phases (rows
     s*r + a, columns s*c + b), only the phases some tap reads: on a phase plane every tap
     moves by whole rows and columns, as in a stride-1 convolution;
   - G images sit side by side in each row (row r of image g at (r * G + g) * Wq), so that small
     maps (VGG's 2x2 and 4x4 at batch 64) still give long rows to vectorize over.
   Outputs are computed on the grid (OH, G, Wq) of Q's rows, flattened: output f is the sum over
   taps of weight * Q[f + offset(tap)]. The columns OW..Wq-1 of each row are computed and thrown
   away (2 * pad of every 34 at 32x32), which buys the constant offsets. A 1x1 convolution with
   stride 1 and no padding reads its input in place.

   The grid is computed in tiles of 16 * V floats held in registers (GCC's vector extensions,
   which each clone below lowers to its own registers): per tap one broadcast of the weight and
   V multiply-adds with a load. For each tile the input channels are taken in blocks whose
   windows fit the L1 cache, and every output channel runs over a block before the next block is
   loaded; partial sums wait in a small buffer between blocks. Tiles (and blocks of output
   channels, where tiles are few) are shared among OpenMP threads. Finished tiles are written to
   the output (N, OC, OH, OW) row by row, leaving out the thrown-away columns.

   The offsets and weights of the taps, packed for one input shape, are the "plan": computed by
   lth_sparse_conv2d_plan, cached by the caller and passed to every call with that shape.

   As in _native.c, on x86-64 the hot functions are compiled for x86-64-v4 (AVX-512), v3 (AVX2)
   and baseline and the loader picks the widest the processor runs; LTH_PRUNE_PORTABLE builds the
   baseline alone, for C libraries without ifunc support. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__x86_64__) && defined(__GNUC__) && !defined(LTH_PRUNE_PORTABLE)
#define LTH_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define LTH_CLONES
#endif

#define LANES 16
#define ALWAYS_INLINE static inline __attribute__((always_inline))

typedef float vec __attribute__((vector_size(LANES * sizeof(float))));
typedef float vec_unaligned __attribute__((vector_size(LANES * sizeof(float)), aligned(4)));

/* One tap: where its window starts relative to the output position, and its weight. */
typedef struct {
    int32_t offset;
    float weight;
} tap;

/* The geometry array the caller passes, in this order. */
enum {
    G_N, G_C, G_H, G_W, G_OC, G_OH, G_OW, G_KH, G_KW, G_SH, G_SW, G_PH, G_PW, G_DH, G_DW,
    G_GROUPS, G_COUNT
};

enum { OK = 0, NO_MEMORY = 1, UNSUPPORTED = 2 };

/* Bytes of input windows a block of channels may take (of a 32-48 KiB L1 data cache), and
   bytes of copied input one window buffer may take. */
#ifndef L1_WINDOWS
#define L1_WINDOWS (32 * 1024)
#endif
/* Grid entries one window buffer should give (images are put side by side until it does). */
#ifndef GRID_TARGET
#define GRID_TARGET 1024
#endif
#define MAX_PHASES 16

typedef struct {
    int64_t n, c, h, w, oc, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw, groups;
    int64_t row_phases, col_phases;
    int64_t row_phase_index[MAX_PHASES], col_phase_index[MAX_PHASES];
    int64_t row_phase[MAX_PHASES], col_phase[MAX_PHASES];
    int64_t max_dy, max_dx, hq, wq;
    int64_t planes_per_channel, image_floats;
    int64_t per_buffer;  /* images side by side in one window buffer (G) */
    int64_t last;        /* images in the last buffer */
    int direct;          /* the buffer is the input itself */
    int64_t vectors;     /* V: vectors per tile */
    int64_t block;       /* input channels per block (of one group) */
    int64_t blocks;      /* blocks per group */
} geometry;

static int wide_registers(void) {
#if defined(__x86_64__) && defined(__GNUC__) && !defined(LTH_PRUNE_PORTABLE)
    /* 8 accumulators of 16 floats fit AVX-512's 32 vector registers; AVX2's 16 hold 4. */
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
#else
    return 0;
#endif
}

static int64_t grid_size(const geometry *geo, int64_t images) { return geo->oh * images * geo->wq; }

/* Everything the plan and the convolution derive from the caller's geometry and cache size. */
static int derive(const int64_t *v, int64_t cache_bytes, geometry *geo) {
    geo->n = v[G_N]; geo->c = v[G_C]; geo->h = v[G_H]; geo->w = v[G_W];
    geo->oc = v[G_OC]; geo->oh = v[G_OH]; geo->ow = v[G_OW]; geo->kh = v[G_KH]; geo->kw = v[G_KW];
    geo->sh = v[G_SH]; geo->sw = v[G_SW]; geo->ph = v[G_PH]; geo->pw = v[G_PW];
    geo->dh = v[G_DH]; geo->dw = v[G_DW]; geo->groups = v[G_GROUPS];
    if (geo->sh < 1 || geo->sw < 1 || geo->sh > MAX_PHASES || geo->sw > MAX_PHASES
        || geo->groups < 1 || geo->c % geo->groups || geo->oc % geo->groups || geo->n < 1
        || geo->oh < 1 || geo->ow < 1 || geo->kh < 1 || geo->kw < 1 || geo->dh < 1 || geo->dw < 1)
        return UNSUPPORTED;
    for (int64_t a = 0; a < MAX_PHASES; ++a) geo->row_phase_index[a] = geo->col_phase_index[a] = -1;
    geo->row_phases = geo->col_phases = 0;
    for (int64_t ky = 0; ky < geo->kh; ++ky) {
        const int64_t a = (ky * geo->dh) % geo->sh;
        if (geo->row_phase_index[a] < 0) {
            geo->row_phase[geo->row_phases] = a;
            geo->row_phase_index[a] = geo->row_phases++;
        }
    }
    for (int64_t kx = 0; kx < geo->kw; ++kx) {
        const int64_t b = (kx * geo->dw) % geo->sw;
        if (geo->col_phase_index[b] < 0) {
            geo->col_phase[geo->col_phases] = b;
            geo->col_phase_index[b] = geo->col_phases++;
        }
    }
    geo->max_dy = ((geo->kh - 1) * geo->dh) / geo->sh;
    geo->max_dx = ((geo->kw - 1) * geo->dw) / geo->sw;
    geo->hq = geo->oh + geo->max_dy;
    geo->wq = geo->ow + geo->max_dx;
    geo->planes_per_channel = geo->row_phases * geo->col_phases;
    geo->image_floats = geo->c * geo->planes_per_channel * geo->hq * geo->wq;

    /* Images per window buffer: enough for GRID_TARGET outputs per channel, as many as the
       cache budget holds, at least one. More than needed would only lengthen the reach of the
       taps (rows of more images) and so shrink the channel blocks below. */
    int64_t per_buffer = cache_bytes / (int64_t)sizeof(float) / geo->image_floats;
    const int64_t wanted = (GRID_TARGET + geo->oh * geo->wq - 1) / (geo->oh * geo->wq);
    if (per_buffer > wanted) per_buffer = wanted;
    if (per_buffer < 1) per_buffer = 1;
    if (per_buffer > geo->n) per_buffer = geo->n;
    geo->direct = geo->sh == 1 && geo->sw == 1 && geo->ph == 0 && geo->pw == 0 && geo->kh == 1
                  && geo->kw == 1 && (geo->oh * geo->ow >= 256 || per_buffer == 1);
    if (geo->direct) per_buffer = 1;
    geo->per_buffer = per_buffer;
    geo->last = geo->n - ((geo->n - 1) / per_buffer) * per_buffer;

    /* The widest tile the grid fills, up to 8 vectors (4 without AVX-512). */
    const int64_t grid = grid_size(geo, per_buffer);
    const int64_t widest = wide_registers() ? 8 : 4;
    geo->vectors = 1;
    while (geo->vectors < widest && LANES * geo->vectors * 2 <= grid + LANES) geo->vectors *= 2;

    /* Channels per block: their windows (tile plus the rows and columns its taps reach) fit. */
    const int64_t reach = geo->max_dy * per_buffer * geo->wq + geo->max_dx;
    const int64_t channel_floats = geo->planes_per_channel * (LANES * geo->vectors + reach);
    const int64_t in_per_group = geo->c / geo->groups;
    geo->block = L1_WINDOWS / (int64_t)sizeof(float) / channel_floats;
    if (geo->block < 1) geo->block = 1;
    if (geo->block > in_per_group) geo->block = in_per_group;
    geo->blocks = (in_per_group + geo->block - 1) / geo->block;
    /* Offsets are 32-bit. */
    if (per_buffer * geo->image_floats + reach + LANES * 8 >= INT32_MAX
        || (geo->direct && geo->c * geo->h * geo->w >= INT32_MAX))
        return UNSUPPORTED;
    return OK;
}

/* Plan layout, in 32-bit words: splits (OC * (blocks + 1): where each output channel's taps of
   each channel block start), then the taps for a full buffer, then (if the last buffer holds
   fewer images) the taps for the last one. */
static int64_t split_words(const geometry *geo) { return geo->oc * (geo->blocks + 1); }

static int64_t plan_words(const geometry *geo, int64_t nnz) {
    const int64_t sets = geo->last != geo->per_buffer ? 2 : 1;
    return split_words(geo) + sets * nnz * (int64_t)(sizeof(tap) / sizeof(int32_t));
}

/* Words the plan for this geometry takes, or -1 where the kernel does not take it. */
int64_t lth_sparse_conv2d_plan_words(const int32_t *crow, const int64_t *geometry_values, int64_t cache_bytes) {
    geometry geo;
    if (derive(geometry_values, cache_bytes, &geo) != OK) return -1;
    return plan_words(&geo, crow[geo.oc]);
}

static void fill_taps(const geometry *geo, const int32_t *crow, const int32_t *col,
                      const float *values, int64_t images, tap *taps) {
    const int64_t row = images * geo->wq, plane = geo->hq * row;
    const int64_t per_channel = geo->kh * geo->kw;
    const int64_t in_per_group = geo->c / geo->groups, out_per_group = geo->oc / geo->groups;
    /* Offset of each column within its group, then of each group's first channel. */
    const int64_t columns = in_per_group * per_channel;
    int64_t *column_offset = malloc((size_t)columns * sizeof(int64_t));
    if (!column_offset) return;
    for (int64_t k = 0; k < columns; ++k) {
        const int64_t c = k / per_channel, ky = (k % per_channel) / geo->kw, kx = k % geo->kw;
        const int64_t dy = ky * geo->dh, dx = kx * geo->dw;
        const int64_t p = c * geo->planes_per_channel
                          + geo->row_phase_index[dy % geo->sh] * geo->col_phases
                          + geo->col_phase_index[dx % geo->sw];
        column_offset[k] = p * plane + (dy / geo->sh) * row + dx / geo->sw;
    }
    for (int64_t o = 0; o < geo->oc; ++o) {
        const int64_t base = (o / out_per_group) * in_per_group * geo->planes_per_channel * plane;
        for (int64_t t = crow[o]; t < crow[o + 1]; ++t) {
            taps[t].offset = (int32_t)(base + column_offset[col[t]]);
            taps[t].weight = values[t];
        }
    }
    free(column_offset);
}

/* Fill plan (plan_words int32 words) for this geometry. Returns OK, NO_MEMORY or UNSUPPORTED. */
int lth_sparse_conv2d_plan(const int32_t *crow, const int32_t *col, const float *values,
                           const int64_t *geometry_values, int64_t cache_bytes, int32_t *plan) {
    geometry geo;
    if (derive(geometry_values, cache_bytes, &geo) != OK) return UNSUPPORTED;
    const int64_t nnz = crow[geo.oc], per_channel = geo.kh * geo.kw;
    int32_t *split = plan;
    for (int64_t o = 0; o < geo.oc; ++o) {
        int32_t *at = split + o * (geo.blocks + 1);
        int64_t t = crow[o];
        for (int64_t b = 0; b < geo.blocks; ++b) {
            at[b] = (int32_t)t;
            const int64_t end_column = (b + 1) * geo.block * per_channel;
            while (t < crow[o + 1] && col[t] < end_column) ++t;
        }
        at[geo.blocks] = crow[o + 1];
    }
    tap *full = (tap *)(plan + split_words(&geo));
    fill_taps(&geo, crow, col, values, geo.per_buffer, full);
    if (geo.last != geo.per_buffer) fill_taps(&geo, crow, col, values, geo.last, full + nnz);
    return OK;
}

/* V vectors of 16 outputs: acc = init + sum of weight * q[offset + ...] over count taps. The
   taps are spread over WAYS sets of accumulators so that 8 multiply-adds are in flight. */
ALWAYS_INLINE void run_taps(const float *q, const tap *taps, int64_t count, vec *acc, const int V) {
    const int WAYS = 8 / V;
    vec part[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) part[i] = (vec){0};
    int64_t t = 0;
    for (; t + WAYS <= count; t += WAYS) {
#pragma GCC unroll 8
        for (int way = 0; way < WAYS; ++way) {
            const float *src = q + taps[t + way].offset;
            const vec weight = (vec){0} + taps[t + way].weight;
#pragma GCC unroll 8
            for (int v = 0; v < V; ++v)
                part[way * V + v] += weight * *(const vec_unaligned *)(src + LANES * v);
        }
    }
    for (; t < count; ++t) {
        const float *src = q + taps[t].offset;
        const vec weight = (vec){0} + taps[t].weight;
#pragma GCC unroll 8
        for (int v = 0; v < V; ++v) part[v] += weight * *(const vec_unaligned *)(src + LANES * v);
    }
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) {
        vec sum = part[v];
#pragma GCC unroll 8
        for (int way = 1; way < WAYS; ++way) sum += part[way * V + v];
        acc[v] += sum;
    }
}

/* Outputs f .. f + 16V of channel o over one block of its taps: started from the bias (first
   block) or from partial, left in partial (or, after the last block, in partial too, for the
   caller to write out). */
ALWAYS_INLINE void tile_block(const float *q, const tap *taps, int64_t count, int first,
                              float bias, float *partial, const int V) {
    vec acc[8];
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v)
        acc[v] = first ? (vec){0} + bias : *(const vec_unaligned *)(partial + LANES * v);
    run_taps(q, taps, count, acc, V);
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) *(vec_unaligned *)(partial + LANES * v) = acc[v];
}

/* One output at a time, for the last entries of a grid read in place (no slack past it). */
static float point(const float *q, const tap *taps, int64_t count, float init) {
    float sum = init;
    for (int64_t t = 0; t < count; ++t) sum += taps[t].weight * q[taps[t].offset];
    return sum;
}

/* dst[0 .. count) = src[0 .. count) for the short runs of one output row: moves of fixed sizes
   the compiler inlines, where a call of memcpy per row cost as much as the taps at 2 %. */
ALWAYS_INLINE void copy(float *dst, const float *src, int64_t count) {
    for (; count >= LANES; count -= LANES, dst += LANES, src += LANES) memcpy(dst, src, LANES * sizeof(float));
    if (count & 8) { memcpy(dst, src, 8 * sizeof(float)); dst += 8; src += 8; }
    if (count & 4) { memcpy(dst, src, 4 * sizeof(float)); dst += 4; src += 4; }
    if (count & 2) { memcpy(dst, src, 2 * sizeof(float)); dst += 2; src += 2; }
    if (count & 1) *dst = *src;
}

/* dst[0 .. count) = 0, as copy() does it. */
ALWAYS_INLINE void zero(float *dst, int64_t count) {
    static const float zeros[LANES] = {0};
    for (; count >= LANES; count -= LANES, dst += LANES) memcpy(dst, zeros, LANES * sizeof(float));
    copy(dst, zeros, count);
}

/* A run of consecutive outputs of one row, the same for every output channel: where it starts
   in a tile, where it goes in channel 0's part of the output, and its length. */
typedef struct {
    int32_t source, length;
    int64_t destination;
} run;

/* The runs of grid entries [start, start + count), the columns OW..Wq-1 of each row left out.
   runs must hold count / OW + 2 entries; returns how many it filled. */
ALWAYS_INLINE int64_t tile_runs(const geometry *geo, int64_t start, int64_t count, int64_t n0,
                                int64_t images, run *runs) {
    const int64_t wq = geo->wq, ow = geo->ow, plane = geo->oh * geo->ow;
    int64_t segment = start / wq, column = start - segment * wq, made = 0;
    int64_t row = segment / images, image = segment - row * images;
    for (int64_t f = start, end = start + count; f < end;) {
        if (column < ow) {
            int64_t length = ow - column;
            if (length > end - f) length = end - f;
            runs[made].source = (int32_t)(f - start);
            runs[made].length = (int32_t)length;
            runs[made].destination = (n0 + image) * geo->oc * plane + row * ow + column;
            ++made;
        }
        f += wq - column;
        column = 0;
        if (++image == images) {
            image = 0;
            ++row;
        }
    }
    return made;
}

/* Copy the images n0 .. n0 + images into the window buffer q. */
LTH_CLONES static void fill(const geometry *geo, const float *input, float *q, int64_t n0,
                            int64_t images, int64_t threads) {
    const int64_t planes = geo->c * geo->planes_per_channel;
    const int64_t row = images * geo->wq, plane_size = geo->hq * row;
    (void)threads; /* without OpenMP */
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1 && planes > 1)
    for (int64_t p = 0; p < planes; ++p) {
        const int64_t c = p / geo->planes_per_channel;
        const int64_t a = geo->row_phase[(p / geo->col_phases) % geo->row_phases];
        const int64_t b = geo->col_phase[p % geo->col_phases];
        float *dst_plane = q + p * plane_size;
        for (int64_t r = 0; r < geo->hq; ++r) {
            const int64_t iy = geo->sh * r + a - geo->ph;
            for (int64_t image = 0; image < images; ++image) {
                float *dst = dst_plane + r * row + image * geo->wq;
                if (iy < 0 || iy >= geo->h) {
                    zero(dst, geo->wq);
                    continue;
                }
                const float *src = input + (((n0 + image) * geo->c + c) * geo->h + iy) * geo->w;
                if (geo->sw == 1) {
                    /* columns x with 0 <= x + b - pw < W hold input, the others padding */
                    int64_t first = geo->pw - b, last = geo->w + geo->pw - b;
                    if (first < 0) first = 0;
                    if (last > geo->wq) last = geo->wq;
                    if (last < first) last = first;
                    zero(dst, first);
                    copy(dst + first, src + first + b - geo->pw, last - first);
                    zero(dst + last, geo->wq - last);
                } else {
                    /* columns x with 0 <= sw * x + b - pw < W hold input: a strided copy with no
                       test per column (the vectorizer gathers it), zeros either side */
                    const int64_t sw = geo->sw, shift = b - geo->pw;
                    int64_t first = shift >= 0 ? 0 : (-shift + sw - 1) / sw;
                    int64_t last = geo->w - shift > 0 ? (geo->w - shift + sw - 1) / sw : 0;
                    if (first > geo->wq) first = geo->wq;
                    if (last > geo->wq) last = geo->wq;
                    if (last < first) last = first;
                    zero(dst, first);
                    const float *from = src + shift;
                    if (sw == 2) { /* a constant stride, which the vectorizer takes */
                        for (int64_t x = first; x < last; ++x) dst[x] = from[2 * x];
                    } else {
                        for (int64_t x = first; x < last; ++x) dst[x] = from[sw * x];
                    }
                    zero(dst + last, geo->wq - last);
                }
            }
        }
    }
}

/* Output channels [o0, o1) over the tile of V vectors at grid entry f (count real entries). */
ALWAYS_INLINE void tile_channels(const geometry *geo, const float *q, const tap *taps,
                                 const int32_t *split, const float *bias, int64_t f,
                                 int64_t count, int64_t o0, int64_t o1, float *partials,
                                 float *output, int64_t n0, int64_t images, const int V) {
    const int64_t out_per_group = geo->oc / geo->groups;
    const int64_t stride = LANES * V, plane = geo->oh * geo->ow;
    run runs[LANES * 8 + 2];
    const int64_t made = tile_runs(geo, f, count, n0, images, runs);
    /* Channel blocks outermost: each block's windows are loaded once for all channels. Output
       channels of different groups read different channels, so each group runs on its own. */
    for (int64_t g0 = o0; g0 < o1;) {
        const int64_t g1 = ((g0 / out_per_group) + 1) * out_per_group < o1
                               ? ((g0 / out_per_group) + 1) * out_per_group : o1;
        for (int64_t b = 0; b < geo->blocks; ++b) {
            for (int64_t o = g0; o < g1; ++o) {
                const int32_t *at = split + o * (geo->blocks + 1);
                tile_block(q + f, taps + at[b], at[b + 1] - at[b], b == 0, bias ? bias[o] : 0.0f,
                           partials + (o - o0) * stride, V);
            }
        }
        for (int64_t o = g0; o < g1; ++o) {
            const float *values = partials + (o - o0) * stride;
            float *channel = output + o * plane;
            for (int64_t r = 0; r < made; ++r)
                copy(channel + runs[r].destination, values + runs[r].source, runs[r].length);
        }
        g0 = g1;
    }
}

/* Every output of the images n0 .. n0 + images from their window buffer q. Returns OK or
   NO_MEMORY. */
LTH_CLONES static int compute(const geometry *geo, const float *q, const tap *taps,
                              const int32_t *split, const float *bias, int64_t images,
                              float *output, int64_t n0, int64_t threads) {
    const int64_t grid = grid_size(geo, images), V = geo->vectors, stride = LANES * V;
    /* Full tiles, reading past the grid's end into the slack of a copied buffer; a buffer read
       in place ends with tiles of one vector and then single outputs. */
    const int64_t tiles = geo->direct ? grid / stride : (grid + stride - 1) / stride;
    /* Blocks of output channels: all of them, unless the tiles are too few to share among the
       threads. */
    int64_t channel_blocks = 1;
    while (tiles * channel_blocks < 4 * threads && channel_blocks * 2 <= geo->oc / 8) channel_blocks *= 2;
    const int64_t per_block = (geo->oc + channel_blocks - 1) / channel_blocks;
    const int64_t units = tiles * channel_blocks;
    int failed = 0;
#pragma omp parallel num_threads(threads) if (threads > 1 && units > 1) reduction(| : failed)
    {
        /* Each thread's partial sums of one tile for its block of output channels. */
        float *partials = aligned_alloc(64, (size_t)(per_block * stride) * sizeof(float));
        failed = partials == NULL;
#pragma omp for schedule(dynamic, 1)
        for (int64_t unit = 0; unit < units; ++unit) {
            if (!partials) continue;
            const int64_t f = (unit / channel_blocks) * stride;
            const int64_t o0 = (unit % channel_blocks) * per_block;
            const int64_t o1 = o0 + per_block < geo->oc ? o0 + per_block : geo->oc;
            const int64_t count = f + stride <= grid ? stride : grid - f;
            if (o0 >= o1) continue;
            switch (V) {
            case 8: tile_channels(geo, q, taps, split, bias, f, count, o0, o1, partials, output, n0, images, 8); break;
            case 4: tile_channels(geo, q, taps, split, bias, f, count, o0, o1, partials, output, n0, images, 4); break;
            case 2: tile_channels(geo, q, taps, split, bias, f, count, o0, o1, partials, output, n0, images, 2); break;
            default: tile_channels(geo, q, taps, split, bias, f, count, o0, o1, partials, output, n0, images, 1); break;
            }
        }
        free(partials);
    }
    if (failed) return NO_MEMORY;
    if (!geo->direct) return OK;
    /* The rest of a grid read in place: vectors of 16, then single outputs, channel by channel. */
#pragma omp parallel for schedule(dynamic, 4) num_threads(threads) if (threads > 1)
    for (int64_t o = 0; o < geo->oc; ++o) {
        float values[LANES];
        const int32_t *at = split + o * (geo->blocks + 1);
        const tap *own = taps + at[0];
        const int64_t count = at[geo->blocks] - at[0];
        const float init = bias ? bias[o] : 0.0f;
        int64_t f = tiles * stride;
        for (; f < grid; f += LANES) {
            const int64_t length = f + LANES <= grid ? LANES : grid - f;
            if (length == LANES) {
                tile_block(q + f, own, count, 1, init, values, 1);
            } else {
                for (int64_t i = 0; i < length; ++i) values[i] = point(q + f + i, own, count, init);
            }
            run runs[LANES + 2];
            const int64_t made = tile_runs(geo, f, length, n0, images, runs);
            for (int64_t r = 0; r < made; ++r)
                copy(output + o * geo->oh * geo->ow + runs[r].destination, values + runs[r].source, runs[r].length);
        }
    }
    return OK;
}

/* output = conv2d(input, weight, bias) with the taps of plan (lth_sparse_conv2d_plan for the same
   geometry and cache_bytes). input (N, C, H, W) and output (N, OC, OH, OW) are contiguous
   float32; bias is NULL or OC floats; geometry holds G_COUNT entries (see the enum). Returns OK,
   NO_MEMORY (the output is then undefined) or UNSUPPORTED. */
LTH_CLONES int lth_sparse_conv2d_float32(const float *input, float *output, const int32_t *plan,
                                         const float *bias, const int64_t *geometry_values,
                                         int64_t threads, int64_t cache_bytes) {
    geometry geo;
    if (derive(geometry_values, cache_bytes, &geo) != OK) return UNSUPPORTED;
    if (threads < 1) threads = 1;
    const int32_t *split = plan;
    const int64_t nnz = split[geo.oc * (geo.blocks + 1) - 1];
    const tap *full = (const tap *)(plan + split_words(&geo));
    const tap *last = geo.last != geo.per_buffer ? full + nnz : full;
    /* Reads run past a buffer's last entry by up to max_dx, and a tile by up to a tile. */
    const int64_t slack = geo.max_dx + LANES * 8 + LANES;
    const size_t buffer_bytes = ((size_t)(geo.per_buffer * geo.image_floats + slack) * sizeof(float) + 63) / 64 * 64;
    const int64_t buffers = (geo.n + geo.per_buffer - 1) / geo.per_buffer;
    /* With images to spare, each thread fills and computes whole window buffers of its own:
       one parallel region per call, where sharing each buffer's tiles costs two barriers per
       buffer (and on a machine whose other core is busy, each barrier waits for it). */
    const int by_buffer = threads > 1 && buffers >= 2 * threads;
    int status = OK;
#pragma omp parallel num_threads(threads) if (by_buffer) reduction(| : status)
    {
        float *q = geo.direct ? NULL : aligned_alloc(64, buffer_bytes);
        const int64_t inner_threads = by_buffer ? 1 : threads;
#pragma omp for schedule(dynamic, 1)
        for (int64_t index = 0; index < buffers; ++index) {
            if (status != OK || (!geo.direct && !q)) {
                status |= NO_MEMORY;
                continue;
            }
            const int64_t n0 = index * geo.per_buffer;
            const int64_t images = geo.n - n0 < geo.per_buffer ? geo.n - n0 : geo.per_buffer;
            const float *window;
            if (geo.direct) {
                window = input + n0 * geo.c * geo.h * geo.w;
            } else {
                fill(&geo, input, q, n0, images, inner_threads);
                memset(q + images * geo.image_floats, 0, (size_t)slack * sizeof(float)); /* read, never kept */
                window = q;
            }
            status |= compute(&geo, window, images == geo.per_buffer ? full : last, split, bias, images,
                              output, n0, inner_threads);
        }
        free(q);
    }
    return status ? NO_MEMORY : OK;
}
