/*
 * lsl_int.c -- the integer-only LSTM / GRU (DESIGN decision 5b), bit-exact with
 * lstmlite.reference.integer / integer_gru. Portable C99, no allocation: the form meant
 * for microcontrollers. Two weight layouts (lsl.h): row-major (the host runtime), and
 * LSL_INT_PACKED4 (generated projects), whose four-row SMLAD loop is the Cortex-M4 path.
 *
 * Formats: gate pre-activations Q3.12, gate outputs and h Q0.15 (int16), LSTM cell
 * state Q(15-F).F (int16), accumulators int32 (checked, never wrapped). Every right
 * shift rounds half away from zero (rrs); saturation points as in the reference:
 *   SAT A gate pre-activation to int16     SAT B requantized accumulator to int32
 *   SAT C cell state to int16              SAT D h to int16
 *   SAT E activation input to the table's last point
 *   SAT G the GRU's W_hn h + b_hn term to int16
 */
#include <string.h>

#include "lsl_internal.h"

#define GATE_FRAC 12
#define STATE_FRAC 15
#define TABLE_STEP_BITS 5
#define TABLE_SEGMENTS 256

/* f(k/32) * 32768 rounded to nearest (tanh's last entry clipped to 32767), k = 0..256:
 * the reference's SIGMOID_TABLE and TANH_TABLE (tests compare them). */
static const int16_t SIGMOID_TABLE[257] = {
    16384, 16640, 16896, 17151, 17407, 17661, 17916, 18169, 18421, 18673, 18923, 19173, 19420, 19667, 19912, 20155,
    20397, 20636, 20874, 21110, 21344, 21575, 21804, 22031, 22255, 22477, 22696, 22913, 23127, 23338, 23547, 23753,
    23955, 24155, 24352, 24546, 24737, 24925, 25110, 25292, 25471, 25646, 25819, 25988, 26155, 26318, 26479, 26636,
    26790, 26941, 27090, 27235, 27377, 27516, 27653, 27786, 27917, 28045, 28169, 28292, 28411, 28528, 28642, 28753,
    28862, 28968, 29072, 29173, 29272, 29368, 29462, 29554, 29644, 29731, 29816, 29899, 29979, 30058, 30135, 30210,
    30282, 30353, 30422, 30489, 30555, 30618, 30680, 30740, 30799, 30856, 30912, 30966, 31018, 31069, 31119, 31167,
    31214, 31260, 31304, 31347, 31389, 31430, 31469, 31508, 31545, 31581, 31616, 31651, 31684, 31716, 31747, 31778,
    31807, 31836, 31864, 31891, 31917, 31943, 31968, 31992, 32015, 32038, 32060, 32081, 32102, 32122, 32141, 32160,
    32179, 32196, 32214, 32231, 32247, 32263, 32278, 32293, 32307, 32321, 32335, 32348, 32361, 32373, 32385, 32397,
    32408, 32419, 32430, 32440, 32450, 32460, 32469, 32478, 32487, 32496, 32504, 32512, 32520, 32527, 32535, 32542,
    32549, 32555, 32562, 32568, 32574, 32580, 32586, 32592, 32597, 32602, 32607, 32612, 32617, 32622, 32626, 32630,
    32635, 32639, 32643, 32647, 32650, 32654, 32657, 32661, 32664, 32667, 32670, 32673, 32676, 32679, 32682, 32684,
    32687, 32689, 32692, 32694, 32696, 32699, 32701, 32703, 32705, 32707, 32709, 32711, 32712, 32714, 32716, 32717,
    32719, 32720, 32722, 32723, 32725, 32726, 32727, 32728, 32730, 32731, 32732, 32733, 32734, 32735, 32736, 32737,
    32738, 32739, 32740, 32741, 32742, 32742, 32743, 32744, 32745, 32745, 32746, 32747, 32747, 32748, 32749, 32749,
    32750, 32750, 32751, 32752, 32752, 32753, 32753, 32753, 32754, 32754, 32755, 32755, 32756, 32756, 32756, 32757,
    32757,
};
static const int16_t TANH_TABLE[257] = {
    0, 1024, 2045, 3063, 4075, 5079, 6073, 7056, 8025, 8980, 9919, 10840, 11743, 12625, 13486, 14326,
    15143, 15936, 16706, 17452, 18173, 18870, 19542, 20189, 20813, 21411, 21986, 22538, 23066, 23571, 24054, 24516,
    24956, 25376, 25776, 26157, 26519, 26864, 27191, 27502, 27797, 28076, 28341, 28592, 28830, 29055, 29268, 29470,
    29660, 29840, 30010, 30170, 30322, 30465, 30600, 30727, 30847, 30960, 31067, 31167, 31262, 31351, 31435, 31515,
    31589, 31659, 31726, 31788, 31846, 31901, 31953, 32002, 32048, 32091, 32132, 32170, 32206, 32240, 32271, 32301,
    32329, 32356, 32381, 32404, 32426, 32447, 32466, 32484, 32501, 32517, 32532, 32547, 32560, 32573, 32584, 32596,
    32606, 32616, 32625, 32634, 32642, 32649, 32657, 32663, 32670, 32676, 32681, 32686, 32691, 32696, 32700, 32704,
    32708, 32712, 32715, 32718, 32721, 32724, 32727, 32729, 32732, 32734, 32736, 32738, 32740, 32741, 32743, 32745,
    32746, 32747, 32749, 32750, 32751, 32752, 32753, 32754, 32755, 32755, 32756, 32757, 32758, 32758, 32759, 32759,
    32760, 32760, 32761, 32761, 32762, 32762, 32762, 32763, 32763, 32763, 32764, 32764, 32764, 32764, 32765, 32765,
    32765, 32765, 32765, 32766, 32766, 32766, 32766, 32766, 32766, 32766, 32766, 32767, 32767, 32767, 32767, 32767,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767,
};

/* x / 2^s rounded half away from zero; s in 0..63 and |x| + 2^(s-1) < 2^63. */
static int64_t rrs(int64_t x, int32_t s) {
    int64_t half;
    if (s <= 0) return x;
    half = (int64_t)1 << (s - 1);
    return x >= 0 ? (x + half) >> s : -((-x + half) >> s);
}

static int64_t sat(int64_t x, int bits) {
    const int64_t hi = ((int64_t)1 << (bits - 1)) - 1, lo = -((int64_t)1 << (bits - 1));
    return x > hi ? hi : (x < lo ? lo : x);
}

/* SAT B: sat32(rrs(acc * m, shift)); |acc| < 2^31 and 0 <= m < 2^31, so no overflow. */
/* acc is int32 (the callers have checked it), so the product is one 32 x 32 -> 64 multiply. */
static int64_t requant(int32_t acc, int32_t m, int32_t shift) { return sat(rrs((int64_t)acc * m, shift), 32); }

/* Interpolated f(|x|) in Q0.15 for x with `frac` fraction bits (SAT E clamps |x|). */
static int64_t lookup(int64_t x, int32_t frac, const int16_t *table) {
    /* In int32, which is exact: |x| is clamped below 2^18, and the interpolation sum,
     * two table entries (< 2^15) times weights adding to 2^k (k <= 10), below 2^26. It
     * is never negative, so rounding half away from zero is rounding half up. */
    const int32_t k = frac - TABLE_STEP_BITS;
    const int32_t top = (TABLE_SEGMENTS << k) - 1;
    const int64_t ax = x < 0 ? -x : x;
    const int32_t a = ax > top ? top : (int32_t)ax;
    const int32_t idx = a >> k, t = a & ((1 << k) - 1);
    const int32_t v = table[idx] * ((1 << k) - t) + table[idx + 1] * t;
    return k > 0 ? (v + (1 << (k - 1))) >> k : v;
}

static int64_t sigmoid_q15(int64_t x, int32_t frac) {
    int64_t y = lookup(x, frac, SIGMOID_TABLE);
    return x >= 0 ? y : ((int64_t)1 << STATE_FRAC) - y;
}

static int64_t tanh_q15(int64_t x, int32_t frac) {
    int64_t y = lookup(x, frac, TANH_TABLE);
    return x >= 0 ? y : -y;
}

#if defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>

static uint32_t load32(const void *p) { /* unaligned-safe; one LDR on Cortex-M4 */
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* The three DSP instructions C cannot name (ACLE has __sxtb16 and __smlad, but neither
 * the rotated SXTB16 nor the halfword packs; GCC builds these from shifts and masks in
 * four instructions where one does). */
/* __ssat(x, 16): GCC 12's arm_acle.h keeps its builtin's unsigned result in an int32_t
 * inside the macro, which -Wsign-conversion reports wherever __ssat is used; the value
 * (within int16's range) is the same either way. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-conversion"
static inline __attribute__((always_inline)) int32_t ssat16(int32_t x) { return __ssat(x, 16); }
#pragma GCC diagnostic pop

static inline int32_t sxtb16_ror8(uint32_t x) {
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}
static inline int32_t pack_lo(uint32_t a, uint32_t b) { /* (a[15:0], b[15:0]) */
    int32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
static inline int32_t pack_hi(uint32_t a, uint32_t b) { /* (a[31:16], b[31:16]) */
    int32_t r;
    __asm__("pkhtb %0, %1, %2, asr #16" : "=r"(r) : "r"(b), "r"(a));
    return r;
}

/* sum_j w[j] * v[j] for j < n (n a multiple of 4) with the DSP extension (Cortex-M4/M7/
 * M33): SXTB16 sign-extends bytes 0, 2 (and, rotated by 8, bytes 1, 3) of four int8
 * weights into two int16 pairs, PKHBT / PKHTB pair the int16 activations to match, and
 * SMLAD adds two products per instruction. Exact: SMLAD accumulates in int32, and each
 * block of 256 columns adds at most 256 * 127 * 32768 < 2^31 in magnitude before it is
 * moved to int64, so the int32 never wraps and the caller's overflow check sees the
 * exact sum. */
static int64_t dot_dsp(const int8_t *w, int32_t n, const int16_t *v) {
    int64_t total = 0;
    int32_t j = 0;
    while (j < n) {
        const int32_t end = n - j > 256 ? j + 256 : n;
        int32_t part = 0;
        for (; j < end; j += 4) {
            const uint32_t w4 = load32(w + j), x01 = load32(v + j), x23 = load32(v + j + 2);
            part = __smlad(__sxtb16((int32_t)w4), pack_lo(x01, x23), part);   /* w0 x0 + w2 x2 */
            part = __smlad(sxtb16_ror8(w4), pack_hi(x01, x23), part);         /* w1 x1 + w3 x3 */
        }
        total += part;
    }
    return total;
}

/* Activation pairs for the four-row loop, packed once per product: xp[2q] = (v[4q],
 * v[4q + 2]) and xp[2q + 1] = (v[4q + 1], v[4q + 3]), the operand order SXTB16 gives the
 * weights in (n a multiple of 4). */
static void pack_pairs(const int16_t *v, int32_t n, uint32_t *xp) {
    int32_t j;
    for (j = 0; j < n; j += 4) {
        const uint32_t x01 = load32(v + j), x23 = load32(v + j + 2);
        xp[j / 2] = (uint32_t)pack_lo(x01, x23);
        xp[j / 2 + 1] = (uint32_t)pack_hi(x01, x23);
    }
}

/* dot_dsp for four rows at once (row k at w + k * ld) on packed activation pairs: one
 * pair load serves the four rows, so a multiply-add costs about 1.5 instructions
 * instead of 3. Exact for the same reason as dot_dsp; out[k] += the row's sum. */
static void dot4_dsp(const int8_t *w, int32_t ld, int32_t n, const uint32_t *xp, int64_t out[4]) {
    const int8_t *w0 = w, *w1 = w + ld, *w2 = w + 2 * (size_t)ld, *w3 = w + 3 * (size_t)ld;
    int32_t j = 0;
    while (j < n) {
        const int32_t end = n - j > 256 ? j + 256 : n;
        int32_t p0 = 0, p1 = 0, p2 = 0, p3 = 0;
        for (; j < end; j += 4) {
            const int32_t xa = (int32_t)xp[j / 2], xb = (int32_t)xp[j / 2 + 1];
            uint32_t w4 = load32(w0 + j);
            p0 = __smlad(__sxtb16((int32_t)w4), xa, p0);
            p0 = __smlad(sxtb16_ror8(w4), xb, p0);
            w4 = load32(w1 + j);
            p1 = __smlad(__sxtb16((int32_t)w4), xa, p1);
            p1 = __smlad(sxtb16_ror8(w4), xb, p1);
            w4 = load32(w2 + j);
            p2 = __smlad(__sxtb16((int32_t)w4), xa, p2);
            p2 = __smlad(sxtb16_ror8(w4), xb, p2);
            w4 = load32(w3 + j);
            p3 = __smlad(__sxtb16((int32_t)w4), xa, p3);
            p3 = __smlad(sxtb16_ror8(w4), xb, p3);
        }
        out[0] += p0;
        out[1] += p1;
        out[2] += p2;
        out[3] += p3;
    }
}
#endif

/* b[r] + sum_j w[r, j] * v[j], exactly; LSL_ERR_OVERFLOW outside int32. */
static int dot(const int8_t *w, int32_t n, const int16_t *v, int32_t b, int64_t *out) {
    int64_t acc = b;
    int32_t j = 0;
#if defined(__ARM_FEATURE_DSP)
    j = n & ~3;
    acc += dot_dsp(w, j, v);
#endif
    for (; j < n; ++j) acc += (int64_t)w[j] * v[j];
    if (acc > INT32_MAX || acc < INT32_MIN) return LSL_ERR_OVERFLOW;
    *out = acc;
    return LSL_OK;
}

static int32_t gates_of(int32_t cell) { return cell == LSL_LSTM ? 4 : 3; }

/* The accumulator bound (docs/integer.md, "Accumulator bounds"): row r of a (rows x n)
 * int8 matrix read against inputs of `bits` bits can reach at most
 *     |b[r]| + sum_j |w[r, j]| * 2^(bits - 1)
 * in magnitude (every input in [-2^(bits-1), 2^(bits-1) - 1]); the model is refused
 * unless that fits int32 for every row, so no input, state or step can overflow. From
 * the shapes alone: n * 128 * 2^(bits-1) + |b| (n <= 131 071 with int8 input, n <= 511
 * with int16 input and h, when the bias is 0) is sufficient. */
static int rows_fit_int32(const int8_t *w, const int32_t *b, int32_t rows, int32_t n, int32_t bits) {
    const int64_t xmax = (int64_t)1 << (bits - 1);
    int32_t r, j;
    for (r = 0; r < rows; ++r) {
        const int8_t *row = w + (size_t)r * (size_t)n;
        int64_t l1 = 0;
        for (j = 0; j < n; ++j) l1 += row[j] < 0 ? -(int64_t)row[j] : row[j];
        /* n <= 2^24, so l1 <= 2^31, and xmax <= 2^15: the product stays below 2^46 */
        if ((b[r] < 0 ? -(int64_t)b[r] : b[r]) + l1 * xmax > INT32_MAX) return 0;
    }
    return 1;
}

static int32_t up4(int32_t n) { return (n + 3) & ~3; }

/* LSL_INT_PACKED4's promises (lsl.h): 4-byte aligned weights, and no row whose sum
 * could leave int32 (|b| + sum |w| * max |input|, max |input| = 2^(bits-1)). */
static int check_packed(int32_t cell, const lsl_int_direction *d) {
    const int32_t rows = gates_of(cell) * d->hidden_size, I4 = up4(d->input_size), H4 = up4(d->hidden_size);
    int32_t r, p, q, e;
    if (((uintptr_t)d->w_ih & 3) != 0) return LSL_ERR_ARG;
    for (r = 0; r < rows; ++r)
        for (p = 0; p < 2; ++p) {
            const int8_t *blk = d->w_ih + (size_t)(r >> 2) * 4 * (size_t)(I4 + H4) + (p ? 4 * (size_t)I4 : 0) +
                                4 * (r & 3);
            const int32_t n = p ? H4 : I4, b = p ? d->b_hh[r] : d->b_ih[r];
            int64_t bound = b < 0 ? -(int64_t)b : b;
            int64_t sum = 0;
            for (q = 0; q < n / 4; ++q)
                for (e = 0; e < 4; ++e) sum += blk[16 * q + e] < 0 ? -blk[16 * q + e] : blk[16 * q + e];
            bound += sum << (p ? STATE_FRAC : d->input_bits - 1);
            if (bound > INT32_MAX) return LSL_ERR_OVERFLOW;
        }
    return LSL_OK;
}

int lsl_int_model_check(const lsl_int_model *model) {
    int32_t k, d, r, in;
    int rc;
    if (!model || !model->dirs) return LSL_ERR_ARG;
    if (model->layout != LSL_INT_ROWS && model->layout != LSL_INT_PACKED4) return LSL_ERR_ARG;
    if (model->cell != LSL_LSTM && model->cell != LSL_GRU) return LSL_ERR_ARG;
    if (model->num_layers < 1 || model->num_layers > 64) return LSL_ERR_SHAPE;
    if (model->num_directions != 1 && model->num_directions != 2) return LSL_ERR_SHAPE;
    in = model->dirs[0].input_size;
    for (k = 0; k < model->num_layers; ++k) {
        int32_t width = 0;
        for (d = 0; d < model->num_directions; ++d) {
            const lsl_int_direction *dr = &model->dirs[k * model->num_directions + d];
            int32_t rows = gates_of(model->cell) * dr->hidden_size;
            if (dr->hidden_size <= 0 || dr->hidden_size > (1 << 20) || dr->input_size != in) return LSL_ERR_SHAPE;
            if (!dr->w_ih || (!dr->w_hh && model->layout == LSL_INT_ROWS) || !dr->b_ih || !dr->b_hh || !dr->m_ih || !dr->shift_ih || !dr->m_hh ||
                !dr->shift_hh)
                return LSL_ERR_ARG;
            if ((dr->input_bits != 8 && dr->input_bits != 16) || (k > 0 && dr->input_bits != 16) ||
                dr->input_bits != model->dirs[0].input_bits * (k == 0) + 16 * (k > 0))
                return LSL_ERR_ARG;
            if (model->cell == LSL_LSTM && (dr->cell_frac < TABLE_STEP_BITS || dr->cell_frac > STATE_FRAC))
                return LSL_ERR_ARG;
            for (r = 0; r < rows; ++r)
                if (dr->m_ih[r] < 0 || dr->m_hh[r] < 0 || dr->shift_ih[r] < 0 || dr->shift_ih[r] > 62 ||
                    dr->shift_hh[r] < 0 || dr->shift_hh[r] > 62)
                    return LSL_ERR_ARG;
            if (dr->input_size <= 0 || dr->input_size > (1 << 24)) return LSL_ERR_SHAPE;
            /* the accumulator bound (docs/integer.md): row-major weights here, the packed
             * layout in check_packed; either way a model that could overflow is refused */
            if (model->layout == LSL_INT_PACKED4) {
                if ((rc = check_packed(model->cell, dr)) != LSL_OK) return rc;
            } else if (!rows_fit_int32(dr->w_ih, dr->b_ih, rows, dr->input_size, dr->input_bits) ||
                       !rows_fit_int32(dr->w_hh, dr->b_hh, rows, dr->hidden_size, 16)) {
                return LSL_ERR_OVERFLOW;
            }
            width += dr->hidden_size;
        }
        in = width;
    }
    return LSL_OK;
}

static int32_t max_hidden(const lsl_int_model *m) {
    int32_t i, h = 0;
    for (i = 0; i < m->num_layers * m->num_directions; ++i) h = m->dirs[i].hidden_size > h ? m->dirs[i].hidden_size : h;
    return h;
}

static int32_t layer_width(const lsl_int_model *m, int32_t k) {
    int32_t d, w = 0;
    for (d = 0; d < m->num_directions; ++d) w += m->dirs[k * m->num_directions + d].hidden_size;
    return w;
}

size_t lsl_int_state_values(const lsl_int_model *model, int32_t batch) {
    size_t n = 0;
    int32_t i;
    if (lsl_int_model_check(model) != LSL_OK || batch <= 0) return 0;
    for (i = 0; i < model->num_layers * model->num_directions; ++i)
        n += (size_t)batch * (size_t)model->dirs[i].hidden_size * (model->cell == LSL_LSTM ? 2 : 1);
    return n;
}

/* Workspace: two int32 gate rows (G*H) of one stream, plus for whole sequences two
 * int16 layer buffers (B, T, max D*H) and a zero state. */
static size_t gate_bytes(const lsl_int_model *m) {
    return 2 * lsl_round_up((size_t)4 * (size_t)max_hidden(m) * 4, LSL_ALIGN);
}

/* The activation vector of a step: the DSP path's packed pairs (LSL_INT_ROWS, 2 bytes
 * per input of the widest product, + 8), or x and h padded to quads (LSL_INT_PACKED4),
 * whichever is larger; reserved on every target so that a model's workspace is the
 * same everywhere. */
static size_t pack_bytes(const lsl_int_model *m) {
    int32_t i, w = 0;
    for (i = 0; i < m->num_layers * m->num_directions; ++i) {
        const int32_t both = up4(m->dirs[i].input_size) + up4(m->dirs[i].hidden_size);
        w = both > w ? both : w; /* >= the widest product + 4 */
    }
    return lsl_round_up((size_t)2 * (size_t)w, LSL_ALIGN);
}

/* Workspace of one stream's step: two int32 gate rows, then the packed pairs. */
static size_t scratch_bytes(const lsl_int_model *m) { return gate_bytes(m) + pack_bytes(m); }

size_t lsl_int_step_bytes(const lsl_int_model *model, int32_t batch) {
    if (lsl_int_model_check(model) != LSL_OK || batch <= 0) return 0;
    return scratch_bytes(model);
}

size_t lsl_int_run_bytes(const lsl_int_model *model, int32_t batch, int32_t t) {
    size_t width = 0;
    int32_t k;
    if (lsl_int_model_check(model) != LSL_OK || batch <= 0 || t <= 0) return 0;
    if ((int64_t)batch * t > ((int64_t)1 << 28)) return 0;
    for (k = 0; k < model->num_layers; ++k)
        width = (size_t)layer_width(model, k) > width ? (size_t)layer_width(model, k) : width;
    return scratch_bytes(model) + 2 * lsl_round_up((size_t)batch * (size_t)t * width * 2, LSL_ALIGN) +
           lsl_round_up(lsl_int_state_values(model, batch) * 2, LSL_ALIGN);
}

/* g[r] = requant(b[r] + sum_j w[r, j] v[j], m[r], shift[r]) for the `rows` rows of w
 * (rows x n, row-major); LSL_ERR_OVERFLOW when a sum leaves int32. */
static int matvec(const int8_t *w, int32_t rows, int32_t n, const int16_t *v, const int32_t *b, const int32_t *m,
                  const int32_t *shift, int32_t *g, uint32_t *xp) {
    int32_t r = 0;
    int rc;
#if defined(__ARM_FEATURE_DSP)
    const int32_t n4 = n & ~3;
    pack_pairs(v, n4, xp);
    for (; r + 4 <= rows; r += 4) { /* four rows share each activation load */
        int64_t acc[4];
        int32_t k, j;
        for (k = 0; k < 4; ++k) acc[k] = b[r + k];
        dot4_dsp(w + (size_t)r * (size_t)n, n, n4, xp, acc);
        for (k = 0; k < 4; ++k) {
            const int8_t *wr = w + (size_t)(r + k) * (size_t)n;
            for (j = n4; j < n; ++j) acc[k] += (int64_t)wr[j] * v[j];
            if (acc[k] > INT32_MAX || acc[k] < INT32_MIN) return LSL_ERR_OVERFLOW;
            g[r + k] = (int32_t)requant((int32_t)acc[k], m[r + k], shift[r + k]);
        }
    }
#else
    (void)xp;
#endif
    for (; r < rows; ++r) {
        int64_t acc;
        if ((rc = dot(w + (size_t)r * (size_t)n, n, v, b[r], &acc)) != LSL_OK) return rc;
        g[r] = (int32_t)requant((int32_t)acc, m[r], shift[r]);
    }
    return LSL_OK;
}

/* ---- the packed layout (LSL_INT_PACKED4, lsl.h) -------------------------------------
 * One pass over a direction's packed weights computes both products of four gate rows
 * at a time; the activations are first copied, zero-padded to whole quads, into an
 * aligned scratch vector. Every row's bound (checked by lsl_int_model_check) keeps the
 * int32 sums exact in any order, so no int64 and no overflow test run per step. */

#if defined(__GNUC__)
#define INT_INLINE __inline__ __attribute__((always_inline)) /* hot helpers, called per row */
#else
#define INT_INLINE
#endif

/* Floor division by 2^s of a signed value (s in 0..31): `>>` on a negative value is
 * implementation-defined in C99; compilers turn this into one arithmetic shift. */
static INT_INLINE int32_t floor_shift(int32_t x, int32_t s) { return x >= 0 ? x >> s : ~(~x >> s); }

/* requant(acc, m, s) = sat32(rrs(acc * m, s)) (SAT B), the same value as requant()
 * above. For s >= 32 (a multiplier below 1/2: every recurrent row and most input rows)
 * it avoids 64-bit shifts: with p = acc * m and n = [p < 0] (= [acc < 0] when m > 0;
 * for m = 0 both give 0), rrs(p, s) = floor((p - n + 2^(s-1)) / 2^s)
 * = (floor((p - n) / 2^(s-1)) + 1) >> 1, and floor((p - n) / 2^31) fits int32 because
 * |p| < 2^62; the result, below 2^30 in magnitude, needs no saturation. */
static INT_INLINE int32_t requant_fast(int32_t acc, int32_t m, int32_t s) {
    const int64_t q = (int64_t)acc * m - (acc < 0);
    if (s >= 33) { /* floor(q / 2^(s-1)) is the high word shifted */
        const int32_t hi = (int32_t)(q >= 0 ? q >> 32 : ~(~q >> 32));
        return floor_shift(floor_shift(hi, s - 33) + 1, 1);
    }
    if (s == 32) {
        const int32_t top = (int32_t)(q >= 0 ? q >> 31 : ~(~q >> 31));
        return floor_shift(top + 1, 1);
    }
    return (int32_t)requant(acc, m, s);
}

/* sat16(a + b) of two int32 values (SAT A). */
static INT_INLINE int32_t sat16_sum(int32_t a, int32_t b) {
#if defined(__ARM_FEATURE_DSP)
    return ssat16(__qadd(a, b)); /* a sum past int32 saturates there, far past int16 */
#else
    return (int32_t)sat((int64_t)a + b, 16);
#endif
}

#if defined(__ARM_FEATURE_DSP)
/* a0..a3 += rows 0..3's sums over `quads` column quads of the packed weights at p
 * (advanced past them) and the aligned activations v. Per quad: one LDRD of four
 * activations (two int16 pairs), two LDRD of the four rows' 16 weight bytes, and per
 * row SXTB16, SXTB16 ROR 8 (bytes 0, 2 = columns 4q, 4q+1; bytes 1, 3 = 4q+2, 4q+3)
 * and two SMLAD: 21 instructions for 16 multiply-adds. In assembly so that the loop
 * is exactly this (GCC spills its twelve live registers otherwise). */
#define DOT4_PACKED(P, V, QUADS, A0, A1, A2, A3)                                                                       \
    do {                                                                                                           \
        const int16_t *v_ = (V);                                                                                   \
        int32_t n_ = (QUADS);                                                                                      \
        uint32_t x01_, x23_, w0_, w1_, t_;                                                                         \
        if (n_ > 0)                                                                                                \
            __asm__ volatile("1:\n\t"                                                                              \
                             "ldrd %[x01], %[x23], [%[v]], #8\n\t"                                                 \
                             "ldrd %[w0], %[w1], [%[p]], #8\n\t"                                                   \
                             "sxtb16 %[t], %[w0]\n\t"                                                              \
                             "smlad %[a0], %[t], %[x01], %[a0]\n\t"                                                \
                             "sxtb16 %[t], %[w0], ror #8\n\t"                                                      \
                             "smlad %[a0], %[t], %[x23], %[a0]\n\t"                                                \
                             "sxtb16 %[t], %[w1]\n\t"                                                              \
                             "smlad %[a1], %[t], %[x01], %[a1]\n\t"                                                \
                             "sxtb16 %[t], %[w1], ror #8\n\t"                                                      \
                             "smlad %[a1], %[t], %[x23], %[a1]\n\t"                                                \
                             "ldrd %[w0], %[w1], [%[p]], #8\n\t"                                                   \
                             "sxtb16 %[t], %[w0]\n\t"                                                              \
                             "smlad %[a2], %[t], %[x01], %[a2]\n\t"                                                \
                             "sxtb16 %[t], %[w0], ror #8\n\t"                                                      \
                             "smlad %[a2], %[t], %[x23], %[a2]\n\t"                                                \
                             "sxtb16 %[t], %[w1]\n\t"                                                              \
                             "smlad %[a3], %[t], %[x01], %[a3]\n\t"                                                \
                             "sxtb16 %[t], %[w1], ror #8\n\t"                                                      \
                             "smlad %[a3], %[t], %[x23], %[a3]\n\t"                                                \
                             "subs %[n], %[n], #1\n\t"                                                             \
                             "bne 1b\n\t"                                                                          \
                             : [a0] "+r"(A0), [a1] "+r"(A1), [a2] "+r"(A2), [a3] "+r"(A3), [p] "+r"(P),            \
                               [v] "+r"(v_), [n] "+r"(n_), [x01] "=&r"(x01_), [x23] "=&r"(x23_), [w0] "=&r"(w0_),  \
                               [w1] "=&r"(w1_), [t] "=&r"(t_)                                                      \
                             :                                                                                     \
                             : "cc", "memory");                                                                    \
    } while (0)
#else
/* The same sums in plain C (Cortex-M0/M3, hosts): bytes 0..3 of a row's word hold
 * columns 4q, 4q+2, 4q+1, 4q+3. */
static INT_INLINE int32_t dot_quad(const int8_t *b, const int16_t *v) {
    return b[0] * v[0] + b[1] * v[2] + b[2] * v[1] + b[3] * v[3];
}
#define DOT4_PACKED(p, v, quads, a0, a1, a2, a3)                                                                    \
    do {                                                                                                           \
        const int16_t *v_ = (v);                                                                                   \
        int32_t q_;                                                                                                \
        for (q_ = 0; q_ < (quads); ++q_, p += 16, v_ += 4) {                                                       \
            a0 += dot_quad(p, v_);                                                                                 \
            a1 += dot_quad(p + 4, v_);                                                                             \
            a2 += dot_quad(p + 8, v_);                                                                             \
            a3 += dot_quad(p + 12, v_);                                                                            \
        }                                                                                                          \
    } while (0)
#endif

/* Copy n values into dst (4-byte aligned) and zero it up to a whole quad. (Not a plain
 * copy loop: GCC would call memcpy, which newlib runs a byte at a time here.) */
static void copy_padded(int16_t *dst, const int16_t *src, int32_t n) {
    int32_t j;
    for (j = 0; j + 2 <= n; j += 2) {
        const int16_t lo = src[j], hi = src[j + 1];
        dst[j] = lo;
        dst[j + 1] = hi;
    }
    for (; j < n; ++j) dst[j] = src[j];
    for (; j < up4(n); ++j) dst[j] = 0;
}

/* The gate pre-activations of one step from the packed weights: LSTM ga[r] =
 * sat16(requant(acc_x) + requant(acc_h)) (SAT A); GRU ga[r], gb[r] the two requantized
 * products (its n gate uses them apart). v: x (I4 values) then h (H4), aligned. */
static void gates_packed(int32_t cell, const lsl_int_direction *d, const int16_t *v, int32_t *ga, int32_t *gb) {
    const int32_t rows = gates_of(cell) * d->hidden_size, qx = up4(d->input_size) / 4, qh = up4(d->hidden_size) / 4;
    const int16_t *vh = v + 4 * qx;
    const int8_t *w = d->w_ih;
    int32_t r, k;
    for (r = 0; r < rows; r += 4) {
        int32_t x0 = 0, x1 = 0, x2 = 0, x3 = 0, h0 = 0, h1 = 0, h2 = 0, h3 = 0, ax[4], ah[4];
        const int32_t live = rows - r < 4 ? rows - r : 4; /* padded rows: zero weights, results dropped */
        switch (live) { /* the biases start the sums */
        case 4: x3 = d->b_ih[r + 3]; h3 = d->b_hh[r + 3]; /* fall through */
        case 3: x2 = d->b_ih[r + 2]; h2 = d->b_hh[r + 2]; /* fall through */
        case 2: x1 = d->b_ih[r + 1]; h1 = d->b_hh[r + 1]; /* fall through */
        default: x0 = d->b_ih[r]; h0 = d->b_hh[r];
        }
        DOT4_PACKED(w, v, qx, x0, x1, x2, x3);
        DOT4_PACKED(w, vh, qh, h0, h1, h2, h3);
        ax[0] = x0, ax[1] = x1, ax[2] = x2, ax[3] = x3;
        ah[0] = h0, ah[1] = h1, ah[2] = h2, ah[3] = h3;
        for (k = 0; k < live; ++k) {
            const int32_t gx = requant_fast(ax[k], d->m_ih[r + k], d->shift_ih[r + k]);
            const int32_t gh = requant_fast(ah[k], d->m_hh[r + k], d->shift_hh[r + k]);
            if (cell == LSL_LSTM) {
                ga[r + k] = sat16_sum(gx, gh);
            } else {
                ga[r + k] = gx;
                gb[r + k] = gh;
            }
        }
    }
}

/* p / 2^s rounded half away from zero, p an int32 and s in 1..30. */
static INT_INLINE int32_t rrs32(int32_t p, int32_t s) { return floor_shift(p + (1 << (s - 1)) - (p < 0), s); }

static INT_INLINE int32_t sat16_32(int32_t x) {
#if defined(__ARM_FEATURE_DSP)
    return ssat16(x);
#else
    return x > 32767 ? 32767 : (x < -32768 ? -32768 : x);
#endif
}

/* lookup() for an int16-range x, in int32. */
static INT_INLINE int32_t lookup32(int32_t x, int32_t frac, const int16_t *table) {
    const int32_t k = frac - TABLE_STEP_BITS, top = (TABLE_SEGMENTS << k) - 1;
    const int32_t ax = x < 0 ? -x : x, a = ax > top ? top : ax; /* SAT E */
    const int32_t idx = a >> k, t = a & ((1 << k) - 1);
    const int32_t v = table[idx] * ((1 << k) - t) + table[idx + 1] * t;
    return k > 0 ? (v + (1 << (k - 1))) >> k : v;
}
static INT_INLINE int32_t sigmoid32(int32_t x, int32_t frac) {
    const int32_t y = lookup32(x, frac, SIGMOID_TABLE);
    return x >= 0 ? y : (1 << STATE_FRAC) - y;
}
static INT_INLINE int32_t tanh32(int32_t x, int32_t frac) {
    const int32_t y = lookup32(x, frac, TANH_TABLE);
    return x >= 0 ? y : -y;
}

/* step_one for LSL_INT_PACKED4: the same arithmetic in int32 (every product below is
 * of two int16-range values, at most 2^30, and every sum of two of them fits). */
static void step_packed(int32_t cell, const lsl_int_direction *d, const int16_t *x, int16_t *h, int16_t *c,
                        int32_t *ga, int32_t *gb, int16_t *v) {
    const int32_t H = d->hidden_size, I4 = up4(d->input_size);
    int32_t j;
    copy_padded(v, x, d->input_size);
    copy_padded(v + I4, h, H);
    gates_packed(cell, d, v, ga, gb);
    if (cell == LSL_LSTM) {
        const int32_t cs = 2 * STATE_FRAC - d->cell_frac;
        for (j = 0; j < H; ++j) {
            const int32_t i_ = sigmoid32(ga[j], GATE_FRAC), f_ = sigmoid32(ga[H + j], GATE_FRAC);
            const int32_t g_ = tanh32(ga[2 * H + j], GATE_FRAC), o_ = sigmoid32(ga[3 * H + j], GATE_FRAC);
            const int32_t cn = sat16_32(rrs32(f_ * c[j], STATE_FRAC) + rrs32(i_ * g_, cs)); /* SAT C */
            c[j] = (int16_t)cn;
            h[j] = (int16_t)sat16_32(rrs32(o_ * tanh32(cn, d->cell_frac), STATE_FRAC)); /* SAT D */
        }
    } else {
        for (j = 0; j < H; ++j) {
            const int32_t r_ = sigmoid32(sat16_sum(ga[j], gb[j]), GATE_FRAC); /* SAT A */
            const int32_t z_ = sigmoid32(sat16_sum(ga[H + j], gb[H + j]), GATE_FRAC);
            const int32_t hn = sat16_32(gb[2 * H + j]); /* SAT G */
            const int32_t n_ = tanh32(sat16_sum(ga[2 * H + j], rrs32(r_ * hn, STATE_FRAC)), GATE_FRAC);
            /* |(2^15 - z) n + z h| <= 2^15 * 2^15 + 2^15: int32 */
            h[j] = (int16_t)sat16_32(rrs32(((1 << STATE_FRAC) - z_) * n_ + z_ * h[j], STATE_FRAC)); /* SAT D */
        }
    }
}

/* One step of one direction for one stream: x (I), h and c (H) in place. */
static int step_one(const lsl_int_model *m, const lsl_int_direction *d, const int16_t *x, int16_t *h, int16_t *c,
                    int32_t *ga, int32_t *gb, uint32_t *xp) {
    const int32_t cell = m->cell, H = d->hidden_size, G = gates_of(cell), I = d->input_size;
    int32_t j;
    int rc;
    if (m->layout == LSL_INT_PACKED4) { /* proven free of overflow by the model check */
        step_packed(cell, d, x, h, c, ga, gb, (int16_t *)xp);
        return LSL_OK;
    }
    if ((rc = matvec(d->w_ih, G * H, I, x, d->b_ih, d->m_ih, d->shift_ih, ga, xp)) != LSL_OK) return rc;
    if ((rc = matvec(d->w_hh, G * H, H, h, d->b_hh, d->m_hh, d->shift_hh, gb, xp)) != LSL_OK) return rc;
    if (cell == LSL_LSTM) {
        for (j = 0; j < H; ++j) {
            int64_t i_ = sigmoid_q15(sat((int64_t)ga[j] + gb[j], 16), GATE_FRAC);                    /* SAT A */
            int64_t f_ = sigmoid_q15(sat((int64_t)ga[H + j] + gb[H + j], 16), GATE_FRAC);
            int64_t g_ = tanh_q15(sat((int64_t)ga[2 * H + j] + gb[2 * H + j], 16), GATE_FRAC);
            int64_t o_ = sigmoid_q15(sat((int64_t)ga[3 * H + j] + gb[3 * H + j], 16), GATE_FRAC);
            int64_t cn = sat(rrs(f_ * c[j], STATE_FRAC) + rrs(i_ * g_, 2 * STATE_FRAC - d->cell_frac), 16); /* SAT C */
            c[j] = (int16_t)cn;
            h[j] = (int16_t)sat(rrs(o_ * tanh_q15(cn, d->cell_frac), STATE_FRAC), 16); /* SAT D */
        }
    } else {
        for (j = 0; j < H; ++j) {
            int64_t r_ = sigmoid_q15(sat((int64_t)ga[j] + gb[j], 16), GATE_FRAC);          /* SAT A */
            int64_t z_ = sigmoid_q15(sat((int64_t)ga[H + j] + gb[H + j], 16), GATE_FRAC);
            int64_t hn = sat(gb[2 * H + j], 16);                                           /* SAT G */
            int64_t n_ = tanh_q15(sat(ga[2 * H + j] + rrs(r_ * hn, STATE_FRAC), 16), GATE_FRAC);
            h[j] = (int16_t)sat(rrs((((int64_t)1 << STATE_FRAC) - z_) * n_ + z_ * h[j], STATE_FRAC), 16); /* SAT D */
        }
    }
    return LSL_OK;
}

static int16_t *state_h(const lsl_int_model *m, int16_t *state, int32_t batch, int32_t k, int32_t d) {
    size_t off = 0;
    int32_t i, idx = k * m->num_directions + d;
    for (i = 0; i < idx; ++i) off += (size_t)batch * (size_t)m->dirs[i].hidden_size * (m->cell == LSL_LSTM ? 2 : 1);
    return state + off;
}

static int check_input(const lsl_int_model *m, size_t n, const int16_t *x) {
    size_t i;
    if (m->dirs[0].input_bits == 8)
        for (i = 0; i < n; ++i)
            if (x[i] < -128 || x[i] > 127) return LSL_ERR_RANGE;
    return LSL_OK;
}

int lsl_int_run(const lsl_int_model *model, int32_t batch, int32_t t, const int16_t *x, const int32_t *lengths,
                int16_t *out, int16_t *state, void *work, size_t work_bytes) {
    size_t need = lsl_int_run_bytes(model, batch, t), buf_bytes, width = 0;
    int32_t *ga, *gb;
    uint32_t *xp;
    int16_t *buf[2];
    const int16_t *in;
    int32_t k, d, b, s, I;
    int rc = lsl_int_model_check(model);
    if (rc != LSL_OK) return rc;
    if (!x || !out || !work) return LSL_ERR_ARG;
    if (batch <= 0 || t <= 0 || need == 0) return LSL_ERR_SHAPE;
    if (work_bytes < need) return LSL_ERR_BUFFER;
    if (lengths)
        for (b = 0; b < batch; ++b)
            if (lengths[b] < 1 || lengths[b] > t) return LSL_ERR_SHAPE;
    I = model->dirs[0].input_size;
    if ((rc = check_input(model, (size_t)batch * (size_t)t * (size_t)I, x)) != LSL_OK) return rc;
    for (k = 0; k < model->num_layers; ++k)
        width = (size_t)layer_width(model, k) > width ? (size_t)layer_width(model, k) : width;
    buf_bytes = lsl_round_up((size_t)batch * (size_t)t * width * 2, LSL_ALIGN);
    ga = (int32_t *)work;
    gb = (int32_t *)((char *)work + gate_bytes(model) / 2);
    xp = (uint32_t *)((char *)work + gate_bytes(model));
    buf[0] = (int16_t *)((char *)work + scratch_bytes(model));
    buf[1] = (int16_t *)((char *)buf[0] + buf_bytes);
    if (!state) {
        state = (int16_t *)((char *)buf[1] + buf_bytes);
        memset(state, 0, lsl_int_state_values(model, batch) * 2);
    }
    in = x;
    for (k = 0; k < model->num_layers; ++k) {
        const int32_t W = layer_width(model, k);
        int16_t *dst = (k == model->num_layers - 1) ? out : buf[k % 2];
        int32_t col = 0;
        for (d = 0; d < model->num_directions; ++d) {
            const lsl_int_direction *dr = &model->dirs[k * model->num_directions + d];
            const int32_t H = dr->hidden_size;
            int16_t *h = state_h(model, state, batch, k, d);
            int16_t *c = model->cell == LSL_LSTM ? h + (size_t)batch * (size_t)H : NULL;
            for (s = 0; s < t; ++s) {
                const int32_t step = d == 0 ? s : t - 1 - s;
                for (b = 0; b < batch; ++b) {
                    int16_t *o = dst + ((size_t)b * (size_t)t + (size_t)step) * (size_t)W + col;
                    if (lengths && step >= lengths[b]) { /* padded: state kept, output 0 */
                        memset(o, 0, (size_t)H * 2);
                        continue;
                    }
                    rc = step_one(model, dr, in + ((size_t)b * (size_t)t + (size_t)step) * (size_t)dr->input_size,
                                  h + (size_t)b * (size_t)H, c ? c + (size_t)b * (size_t)H : NULL, ga, gb, xp);
                    if (rc != LSL_OK) return rc;
                    memcpy(o, h + (size_t)b * (size_t)H, (size_t)H * 2);
                }
            }
            col += H;
        }
        in = dst;
    }
    return LSL_OK;
}

/* lsl_int_step after the model check: the arguments, then each stream through the layers. */
static int step_checked(const lsl_int_model *model, int32_t batch, const int16_t *x, int16_t *state, int16_t *out,
                        void *work, size_t work_bytes) {
    int32_t *ga, *gb;
    uint32_t *xp;
    int32_t k, b;
    int rc;
    if (model->num_directions != 1) return LSL_ERR_UNSUPPORTED;
    if (!x || !state || !out || !work) return LSL_ERR_ARG;
    if (batch <= 0) return LSL_ERR_SHAPE;
    if (work_bytes < scratch_bytes(model)) return LSL_ERR_BUFFER; /* lsl_int_step_bytes of a checked model */
    if ((rc = check_input(model, (size_t)batch * (size_t)model->dirs[0].input_size, x)) != LSL_OK) return rc;
    ga = (int32_t *)work;
    gb = (int32_t *)((char *)work + gate_bytes(model) / 2);
    xp = (uint32_t *)((char *)work + gate_bytes(model));
    for (b = 0; b < batch; ++b) {
        const int16_t *in = x + (size_t)b * (size_t)model->dirs[0].input_size;
        for (k = 0; k < model->num_layers; ++k) {
            const lsl_int_direction *dr = &model->dirs[k];
            const int32_t H = dr->hidden_size;
            int16_t *h = state_h(model, state, batch, k, 0) + (size_t)b * (size_t)H;
            int16_t *c = model->cell == LSL_LSTM ? h + (size_t)batch * (size_t)H : NULL;
            if ((rc = step_one(model, dr, in, h, c, ga, gb, xp)) != LSL_OK) return rc;
            in = h;
        }
        memcpy(out + (size_t)b * (size_t)model->dirs[model->num_layers - 1].hidden_size, in,
               (size_t)model->dirs[model->num_layers - 1].hidden_size * 2);
    }
    return LSL_OK;
}

int lsl_int_step(const lsl_int_model *model, int32_t batch, const int16_t *x, int16_t *state, int16_t *out,
                 void *work, size_t work_bytes) {
    int rc = lsl_int_model_check(model);
    if (rc != LSL_OK) return rc;
    return step_checked(model, batch, x, state, out, work, work_bytes);
}

int lsl_int_step_prechecked(const lsl_int_model *model, int32_t batch, const int16_t *x, int16_t *state,
                            int16_t *out, void *work, size_t work_bytes) {
    if (!model || !model->dirs) return LSL_ERR_ARG;
    return step_checked(model, batch, x, state, out, work, work_bytes);
}

int lsl_int_dense(const int8_t *w, const int32_t *b, int32_t rows, int32_t cols, const int16_t *x, int32_t *out) {
    int32_t r;
    int rc;
    if (!w || !b || !x || !out) return LSL_ERR_ARG;
    if (rows <= 0 || cols <= 0) return LSL_ERR_SHAPE;
    for (r = 0; r < rows; ++r) {
        int64_t acc;
        if ((rc = dot(w + (size_t)r * (size_t)cols, cols, x, b[r], &acc)) != LSL_OK) return rc;
        out[r] = (int32_t)acc;
    }
    return LSL_OK;
}
