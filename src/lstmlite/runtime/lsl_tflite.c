/*
 * lsl_tflite.c -- TFLite-compatible integer LSTM, bit-exact with
 * lstmlite.reference.tflite_int (see that module for the equations, roundings and
 * saturation points SAT 1-4, which the comments below name).
 *
 * Portable C99 with no implementation-defined arithmetic: a right shift of a negative
 * value is written floor_shr (floor division by 2^s), left shifts as multiplications,
 * so a compiler for any target gives the same integers. Scalar on purpose: this is the
 * form for microcontrollers and the generated C; clarity and exactness first.
 */
#include "lsl_tflite.h"

#define I16_MIN (-32768)
#define I16_MAX 32767
#define I32_MIN_ (-2147483647 - 1)
#define I32_MAX_ 2147483647

/* TFLite's sigmoid_table_uint16: sigmoid(k/24), k = 0..255, unsigned Q0.16, as TensorFlow
 * Lite ships it (tensorflow/lite/kernels/internal/common.h, Apache-2.0). The reference's
 * SIGMOID_TABLE_U16; the tests compare the two through lsl_tflite_sigmoid/_tanh. */
static const uint16_t TFLITE_SIGMOID_U16[256] = {
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149, 40794, 41432, 42064, 42688,
    43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369, 47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409,
    51865, 52311, 52745, 53169, 53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433,
    57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370, 60565, 60753, 60935, 61110,
    61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302, 62428, 62549, 62666, 62778, 62886, 62990, 63090, 63186,
    63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835, 63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308,
    64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786, 64816, 64845, 64873, 64900,
    64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079, 65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208,
    65221, 65234, 65246, 65258, 65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367,
    65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433, 65438, 65442, 65445, 65449,
    65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474, 65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491,
    65493, 65495, 65497, 65498, 65500, 65501, 65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513,
    65514, 65515, 65516, 65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524,
    65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528, 65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530,
    65530, 65530, 65531, 65531, 65531, 65531, 65531, 65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
    65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65535,
};

/* ---- primitives ------------------------------------------------------------------- */

/* floor(v / 2^s) for 0 <= s <= 62, |v| < 2^63: an arithmetic shift without relying on it. */
static int64_t floor_shr(int64_t v, int s) {
    if (v >= 0) return v >> s;
    return -(((-(v + 1)) >> s) + 1);
}

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

/* gemmlowp's RoundingDivideByPOT: x / 2^e rounded half away from zero. */
static int64_t rdbpot(int64_t x, int e) {
    int64_t q, rem, threshold;
    if (e == 0) return x;
    q = floor_shr(x, e);
    rem = x - q * ((int64_t)1 << e);
    threshold = ((((int64_t)1 << e) - 1) >> 1) + (x < 0 ? 1 : 0);
    return q + (rem > threshold ? 1 : 0);
}

/* mbqm's double rounding: gemmlowp's SaturatingRoundingDoublingHighMul (srdhm: floor((a b +
 * 2^30) / 2^31), ties to +inf; its one saturating case, a = b = INT32_MIN, cannot occur as
 * m >= 0), then RoundingDivideByPOT (rdbpot): one 32 x 32 -> 64-bit product, then
 * branch-free unsigned shifts and 32-bit arithmetic (floor_shr on int64 costs a Cortex-M
 * branches and multi-word shifts). a = x * 2^max(s, 0)
 * is an int32 (the callers' promise), m >= 0 (lsl_tflite_check), so |a * m| < 2^62:
 *   srdhm:  floor((a m + 2^30) / 2^31), as floor((p + 2^62) / 2^31) - 2^31 in unsigned
 *           arithmetic (2^62 is a multiple of 2^31, and p + 2^62 >= 0, so no shift of a
 *           negative value);
 *   rdbpot: floor(y / 2^e) likewise from y + 2^31 (e <= 31), remainder y mod 2^e from the
 *           unsigned bits, plus one when the remainder passes the half (ties away from 0). */
static int32_t mbqm32(int32_t x, int32_t m, int32_t s) {
    const int32_t a = s > 0 ? x * ((int32_t)1 << s) : x;
    const uint64_t p = (uint64_t)((int64_t)a * m + ((int64_t)1 << 30)) + ((uint64_t)1 << 62);
    const int32_t y = (int32_t)((int64_t)(p >> 31) - ((int64_t)1 << 31));
    const int e = s > 0 ? 0 : -s;
    const uint32_t mask = e ? (((uint32_t)1 << e) - 1u) : 0u;
    const int32_t q = (int32_t)((int64_t)((((uint32_t)y + 0x80000000u) >> e)) - (int64_t)(0x80000000u >> e));
    const uint32_t rem = (uint32_t)y & mask, threshold = (mask >> 1) + (y < 0 ? 1u : 0u);
    return q + (rem > threshold ? 1 : 0);
}

/* TFLite's MultiplyByQuantizedMultiplier (int32 x); callers keep |x * 2^max(s,0)| < 2^31. */
static int64_t mbqm(int64_t x, int32_t m, int32_t s, int single) {
    if (single) {
        int total = 31 - s;
        return floor_shr(x * (int64_t)m + ((int64_t)1 << (total - 1)), total);
    }
    return mbqm32((int32_t)x, m, s);
}

/* TFLite's 64-bit MultiplyByQuantizedMultiplier (16x8 accumulators, |x| < 2^47, s <= 7). */
static int64_t mbqm64(int64_t x, int32_t m, int32_t s) {
    int64_t reduced = m < 0x7FFF0000 ? ((int64_t)m + (1 << 15)) >> 16 : 0x7FFF;
    int total = 15 - s;
    return floor_shr(x * reduced + ((int64_t)1 << (total - 1)), total);
}

int16_t lsl_tflite_sigmoid(int16_t x) {
    int64_t v = (int64_t)x * 3, a = v < 0 ? -v : v, u = a >> 9, r;
    if (u >= 255) {
        r = (int64_t)0x7FFF << 10; /* SAT 4 */
    } else {
        int64_t lo = TFLITE_SIGMOID_U16[u], hi = TFLITE_SIGMOID_U16[u + 1];
        r = lo * 512 + (a & 0x1FF) * (hi - lo);
    }
    return (int16_t)(v >= 0 ? (r + 512) >> 10 : (((int64_t)1 << 25) - r + 511) >> 10);
}

int16_t lsl_tflite_tanh(int16_t x, int32_t left_shift) {
    int64_t v, a, u, r;
    if (left_shift >= 0)
        v = (int64_t)x * 3 * ((int64_t)1 << left_shift);
    else
        v = floor_shr((int64_t)x * 3 + ((int64_t)1 << (-left_shift - 1)), -left_shift);
    a = v < 0 ? -v : v;
    u = a >> 8;
    if (u >= 255) {
        r = (int64_t)0xFFFF << 8; /* SAT 4 */
    } else {
        int64_t lo = TFLITE_SIGMOID_U16[u], hi = TFLITE_SIGMOID_U16[u + 1];
        r = lo * 256 + (a & 0xFF) * (hi - lo);
    }
    /* v < 0 can make the numerator negative: floor, as TFLite's shift of the wrapped value */
    return (int16_t)(v >= 0 ? floor_shr(r - ((int64_t)1 << 23) + 128, 8)
                            : floor_shr(((int64_t)1 << 23) - r + 127, 8));
}

/* ---- gemmlowp's int16 logistic / tanh (kernel = LSL_TFLITE_KERNEL_LITE) ------------ *
 * Desktop TFLite (LiteRT) computes its LSTM gates with gemmlowp's fixed-point functions;
 * this is lstmlite.reference._gemmlowp16 in C, int16 semantics written out: add/sub/neg
 * wrap modulo 2^16, srdhm16 rounds ties away from zero, constants are gemmlowp's int32
 * constants rounded to int16. Values are held in int32. */

static int32_t wrap16(int32_t v) {
    int32_t m = v % 65536;
    if (m < 0) m += 65536;
    return m >= 32768 ? m - 65536 : m;
}

/* two's-complement bit k of v (no reliance on & of negative values) */
static int32_t bit_of(int32_t v, int k) {
    int64_t q = floor_shr(v, k);
    return (int32_t)(q - 2 * floor_shr(q, 1));
}

static int32_t srdhm16(int32_t a, int32_t b) {
    int32_t ab;
    if (a == I16_MIN && b == I16_MIN) return I16_MAX;
    ab = a * b;
    return (ab + (ab >= 0 ? (1 << 14) : 1 - (1 << 14))) / (1 << 15); /* C99: truncates */
}

/* SaturatingRoundingMultiplyByPOT<e> */
static int32_t mul_pot16(int32_t x, int e) {
    int32_t threshold;
    if (e <= 0) return (int32_t)rdbpot(x, -e);
    threshold = (1 << (15 - e)) - 1;
    if (x > threshold) return I16_MAX;
    if (x < -threshold) return I16_MIN;
    return x * (1 << e);
}

#define G16_EXP_M1_8 28918 /* exp(-1/8) */
#define G16_ONE_THIRD 10923
#define G16_48_17 23130      /* 48/17 in F2 */
#define G16_NEG_32_17 (-15420) /* -32/17 in F2 */
#define G16_ONE_F0 32767
#define G16_ONE_F2 8192
static const int32_t G16_BARREL[7] = {25520, 19875, 12055, 4435, 600, 11, 0}; /* exp(-2^e), e = -2..4 */

static int32_t g16_exp_quarter(int32_t a) { /* exp(a), a in [-1/4, 0), F0 */
    int32_t x = wrap16(a + (1 << 12)), x2 = srdhm16(x, x), x3 = srdhm16(x2, x), x4 = srdhm16(x2, x2), poly;
    poly = (int32_t)rdbpot(wrap16(srdhm16(wrap16((int32_t)rdbpot(x4, 2) + x3), G16_ONE_THIRD) + x2), 1);
    return (int32_t)clamp64((int64_t)G16_EXP_M1_8 + srdhm16(G16_EXP_M1_8, wrap16(x + poly)), I16_MIN, I16_MAX);
}

static int32_t g16_exp_negative(int32_t a, int k) { /* exp(a), a <= 0 in F_k -> F0 */
    const int frac = 15 - k;
    const int32_t quarter = 1 << (frac - 2);
    int32_t amq = wrap16((a - (int32_t)floor_shr(a, frac - 2) * quarter) - quarter); /* (a & (q-1)) - q */
    int32_t result = g16_exp_quarter(mul_pot16(amq, k)), remainder = wrap16(amq - a);
    int e;
    for (e = -2; e <= 4; e++)
        if (k > e && bit_of(remainder, frac + e)) result = srdhm16(result, G16_BARREL[e + 2]);
    if (k > 5 && a < (int32_t)rdbpot(-((int64_t)1 << (36 - k)), 16)) result = 0;
    return a == 0 ? G16_ONE_F0 : result;
}

static int32_t g16_reciprocal_f2(int32_t a) { /* 1 / ((1 + a) / 2) in F2, Newton-Raphson */
    int32_t sum = a + G16_ONE_F0, half = (sum + (sum >= 0 ? 1 : -1)) / 2, x, i;
    x = wrap16(G16_48_17 + srdhm16(half, G16_NEG_32_17));
    for (i = 0; i < 3; i++) x = wrap16(x + mul_pot16(srdhm16(x, wrap16(G16_ONE_F2 - srdhm16(half, x))), 2));
    return x;
}

static int16_t g16_logistic(int32_t a, int k) {
    int32_t abs_in = a > 0 ? a : wrap16(-a);
    int32_t if_pos = mul_pot16(g16_reciprocal_f2(g16_exp_negative(wrap16(-abs_in), k)), 1);
    if (a == 0) return 16384;
    return (int16_t)(a > 0 ? if_pos : wrap16(G16_ONE_F0 - if_pos));
}

static int16_t g16_tanh(int32_t a, int k) {
    int32_t n = a < 0 ? a : wrap16(-a);
    int32_t t = mul_pot16(wrap16(g16_reciprocal_f2(g16_exp_negative(n, k + 1)) - G16_ONE_F2), 2);
    if (a == 0) return 0;
    return (int16_t)(a < 0 ? wrap16(-t) : t);
}

int16_t lsl_tflite_lite_logistic(int16_t x, int32_t integer_bits) { return g16_logistic(x, (int)integer_bits); }
int16_t lsl_tflite_lite_tanh(int16_t x, int32_t integer_bits) { return g16_tanh(x, (int)integer_bits); }

/* ---- checks ----------------------------------------------------------------------- */

static int bad_multiplier(int32_t m, int32_t s) { return m < 0 || s < -31 || s > 30; }

int lsl_tflite_check(const lsl_tflite_params *p) {
    int32_t lo, hi, g;
    if (!p || p->input_size < 1 || p->hidden_size < 1) return LSL_TFLITE_EINVAL;
    if (p->activation_bits != 8 && p->activation_bits != 16) return LSL_TFLITE_EINVAL;
    lo = p->activation_bits == 8 ? -128 : I16_MIN;
    hi = p->activation_bits == 8 ? 127 : I16_MAX;
    if (p->input_zero_point < lo || p->input_zero_point > hi) return LSL_TFLITE_EINVAL;
    if (p->output_zero_point < lo || p->output_zero_point > hi) return LSL_TFLITE_EINVAL;
    if (p->hidden_zero_point < lo || p->hidden_zero_point > hi) return LSL_TFLITE_EINVAL;
    if (p->cell_scale_power < -31 || p->cell_scale_power > 2) return LSL_TFLITE_EINVAL;
    if (p->cell_clip < 0 || p->cell_clip > I16_MAX) return LSL_TFLITE_EINVAL;
    if (p->kernel != LSL_TFLITE_KERNEL_MICRO && p->kernel != LSL_TFLITE_KERNEL_LITE) return LSL_TFLITE_EINVAL;
    if (p->kernel == LSL_TFLITE_KERNEL_LITE &&
        (p->activation_bits != 8 || p->cell_scale_power < -15 || p->cell_scale_power > -9))
        return LSL_TFLITE_EINVAL;
    if (bad_multiplier(p->forget_cell_multiplier, p->forget_cell_shift) || p->forget_cell_shift > 0 ||
        bad_multiplier(p->input_cell_multiplier, p->input_cell_shift) || p->input_cell_shift > 0 ||
        bad_multiplier(p->output_multiplier, p->output_shift) || p->output_shift > 0)
        return LSL_TFLITE_EINVAL;
    for (g = 0; g < 4; g++) {
        const lsl_tflite_gate *q = &p->gates[g];
        if (!q->input_weights || !q->hidden_weights) return LSL_TFLITE_EINVAL;
        if (bad_multiplier(q->input_multiplier, q->input_shift) ||
            bad_multiplier(q->hidden_multiplier, q->hidden_shift))
            return LSL_TFLITE_EINVAL;
        /* the 64-bit mbqm of 16x8 models shifts right by 15 - s: TFLite allows s < 8
         * (a larger s made that shift negative: found by fuzz_step, corpus/step/) */
        if (p->activation_bits == 16 && (q->input_shift > 7 || q->hidden_shift > 7)) return LSL_TFLITE_EINVAL;
    }
    return LSL_TFLITE_OK;
}

/* The worst |accumulator| of each row of one matmul against zero point z, and the
 * limit lsl_tflite_check_bounds documents; 0 when a row exceeds it. */
static int rows_fit(const lsl_tflite_params *p, const int8_t *w, int32_t cols, int32_t zero, const int32_t *b32,
                    const int64_t *b64, int32_t shift) {
    const int64_t lo = p->activation_bits == 8 ? -128 : I16_MIN, hi = p->activation_bits == 8 ? 127 : I16_MAX;
    const int64_t dev = hi - zero > zero - lo ? hi - zero : zero - lo; /* max |v - z| <= 65535 */
    const int64_t limit = p->activation_bits == 16 ? ((int64_t)1 << 47) - 1
                                                   : (shift > 0 ? ((int64_t)1 << (31 - shift)) - 1 : I32_MAX_);
    int32_t r, j;
    for (r = 0; r < p->hidden_size; r++) {
        const int8_t *row = w + (size_t)r * (size_t)cols;
        int64_t l1 = 0, bias = b32 ? (int64_t)b32[r] : (b64 ? b64[r] : 0);
        for (j = 0; j < cols; j++) l1 += row[j] < 0 ? -(int64_t)row[j] : row[j];
        if (bias < -limit || bias > limit) return 0; /* also keeps |bias| below 2^63 - l1 * dev */
        /* l1 <= 128 * 2^31 (cols is an int32) and dev < 2^16: below 2^54 */
        if ((bias < 0 ? -bias : bias) + l1 * dev > limit) return 0;
    }
    return 1;
}

int lsl_tflite_check_bounds(const lsl_tflite_params *p) {
    int g;
    int rc = lsl_tflite_check(p);
    if (rc) return rc;
    for (g = 0; g < 4; g++) {
        const lsl_tflite_gate *q = &p->gates[g];
        if (!rows_fit(p, q->input_weights, p->input_size, p->input_zero_point, q->bias32, q->bias64, q->input_shift) ||
            !rows_fit(p, q->hidden_weights, p->hidden_size, p->output_zero_point, NULL, NULL, q->hidden_shift))
            return LSL_TFLITE_EOVERFLOW;
    }
    return LSL_TFLITE_OK;
}

/* ---- the step --------------------------------------------------------------------- */

static int64_t act_at(const lsl_tflite_params *p, const void *v, size_t k) {
    return p->activation_bits == 8 ? (int64_t)((const int8_t *)v)[k] : (int64_t)((const int16_t *)v)[k];
}

/* sum_j w[j] * (x[j] - zero) over n int8 values, exact. x - zero lies in [-255, 255] (an
 * int16), so a product is below 2^15 in magnitude and an int32 sum of 2^16 of them cannot
 * overflow: the sum runs in int32 over chunks of 2^16 columns and in int64 across chunks. */
#define DOT8_CHUNK 65536
#if defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>
#include <string.h>

static int32_t sxtb16_ror8(int32_t x) { /* bytes 1 and 3 as an int16 pair (ACLE has no rotated form) */
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}
#endif

static int64_t dot8(const int8_t *w, const int8_t *x, int32_t n, int32_t zero) {
    int64_t total = 0;
    int32_t start = 0;
    while (start < n) {
        const int32_t end = n - start > DOT8_CHUNK ? start + DOT8_CHUNK : n;
        int32_t j = start, acc = 0;
#if defined(__ARM_FEATURE_DSP)
        /* Cortex-M4/M7/M33: four columns per turn, two SMLAD on int16 pairs. SXTB16 unpacks
         * bytes 0, 2 (and, rotated, 1, 3) of a word of weights and of activations alike, so
         * the pairs line up; SSUB16 subtracts the zero point from both halves (exact: the
         * results are in int16). Words in ACLE's int8x4_t / int16x2_t (int32_t); zz is the
         * bit pattern of the zero point in both halves. */
        const int32_t zz = (int32_t)((uint32_t)(uint16_t)(int16_t)zero * 0x10001u);
        for (; j + 4 <= end; j += 4) {
            int32_t wv, xv;
            memcpy(&wv, w + j, 4);
            memcpy(&xv, x + j, 4);
            acc = __smlad(__sxtb16(wv), __ssub16(__sxtb16(xv), zz), acc);
            acc = __smlad(sxtb16_ror8(wv), __ssub16(sxtb16_ror8(xv), zz), acc);
        }
#endif
        for (; j < end; j++) acc += (int32_t)w[j] * ((int32_t)x[j] - zero);
        total += acc;
        start = end;
    }
    return total;
}

/* sat16(mbqm(bias + sum_j W[r, j] * (v[j] - z))) for r < H into out (SAT 1). */
/* Four rows' dot8 with the same activations (n <= DOT8_CHUNK, so int32 sums are exact):
 * on the DSP path each word of activations is unpacked once for four rows. */
static void dot8x4(const int8_t *w, int32_t n, const int8_t *x, int32_t zero, int64_t *sums) {
    const int8_t *w0 = w, *w1 = w + n, *w2 = w + 2 * (size_t)n, *w3 = w + 3 * (size_t)n;
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, j = 0;
#if defined(__ARM_FEATURE_DSP)
    const int32_t zz = (int32_t)((uint32_t)(uint16_t)(int16_t)zero * 0x10001u); /* as in dot8 */
    for (; j + 4 <= n; j += 4) {
        int32_t xv, wv, x02, x13;
        memcpy(&xv, x + j, 4);
        x02 = __ssub16(__sxtb16(xv), zz);
        x13 = __ssub16(sxtb16_ror8(xv), zz);
        memcpy(&wv, w0 + j, 4);
        a0 = __smlad(sxtb16_ror8(wv), x13, __smlad(__sxtb16(wv), x02, a0));
        memcpy(&wv, w1 + j, 4);
        a1 = __smlad(sxtb16_ror8(wv), x13, __smlad(__sxtb16(wv), x02, a1));
        memcpy(&wv, w2 + j, 4);
        a2 = __smlad(sxtb16_ror8(wv), x13, __smlad(__sxtb16(wv), x02, a2));
        memcpy(&wv, w3 + j, 4);
        a3 = __smlad(sxtb16_ror8(wv), x13, __smlad(__sxtb16(wv), x02, a3));
    }
#endif
    for (; j < n; j++) {
        const int32_t xz = (int32_t)x[j] - zero;
        a0 += (int32_t)w0[j] * xz;
        a1 += (int32_t)w1[j] * xz;
        a2 += (int32_t)w2[j] * xz;
        a3 += (int32_t)w3[j] * xz;
    }
    sums[0] = a0;
    sums[1] = a1;
    sums[2] = a2;
    sums[3] = a3;
}

/* The int8 matmul's row epilogue: bias + sum, TFLite's int32 range (where TFLite wraps we
 * report), requantization, SAT 1. */
static int finish8(int64_t acc, int32_t m, int32_t s, int single, int16_t *out) {
    int32_t y;
    if (acc < I32_MIN_ || acc > I32_MAX_) return LSL_TFLITE_EOVERFLOW; /* TFLite wraps */
    if (s > 0 && (acc >= ((int64_t)1 << (31 - s)) || -acc >= ((int64_t)1 << (31 - s)))) return LSL_TFLITE_EOVERFLOW;
    y = single ? (int32_t)clamp64(mbqm(acc, m, s, 1), I32_MIN_, I32_MAX_) : mbqm32((int32_t)acc, m, s);
    *out = (int16_t)(y < I16_MIN ? I16_MIN : (y > I16_MAX ? I16_MAX : y));
    return LSL_TFLITE_OK;
}

/* fully_connected for int8 activations: rows in blocks of four (dot8x4), then one at a time. */
static int fully_connected8(const lsl_tflite_params *p, const int8_t *x, int32_t cols, int32_t zero,
                            const int8_t *w, const int32_t *b32, const int64_t *b64, int32_t m, int32_t s,
                            int16_t *out) {
    const int32_t H = p->hidden_size, single = p->single_rounding;
    const int32_t blocked = cols <= DOT8_CHUNK ? H / 4 * 4 : 0;
    int64_t sums[4];
    int32_t r, k;
    int rc;
    for (r = 0; r < blocked; r += 4) {
        dot8x4(w + (size_t)r * (size_t)cols, cols, x, zero, sums);
        for (k = 0; k < 4; k++) {
            const int64_t b = b32 ? (int64_t)b32[r + k] : (b64 ? b64[r + k] : 0);
            if ((rc = finish8(b + sums[k], m, s, single, out + r + k)) != LSL_TFLITE_OK) return rc;
        }
    }
    for (; r < H; r++) {
        const int64_t b = b32 ? (int64_t)b32[r] : (b64 ? b64[r] : 0);
        if ((rc = finish8(b + dot8(w + (size_t)r * (size_t)cols, x, cols, zero), m, s, single, out + r)) !=
            LSL_TFLITE_OK)
            return rc;
    }
    return LSL_TFLITE_OK;
}

/* sat16(mbqm(bias + sum_j W[r, j] * (v[j] - z))) for r < H into out (SAT 1). */
static int fully_connected(const lsl_tflite_params *p, const void *v, size_t v_off, int32_t cols, int32_t zero,
                           const int8_t *w, const int32_t *b32, const int64_t *b64, int32_t m, int32_t s,
                           int16_t *out) {
    int32_t r, j;
    if (p->activation_bits == 8)
        return fully_connected8(p, (const int8_t *)v + v_off, cols, zero, w, b32, b64, m, s, out);
    for (r = 0; r < p->hidden_size; r++) {
        const int8_t *row = w + (size_t)r * (size_t)cols;
        int64_t acc = b32 ? (int64_t)b32[r] : (b64 ? b64[r] : 0), y;
        for (j = 0; j < cols; j++) acc += (int64_t)row[j] * (act_at(p, v, v_off + (size_t)j) - zero);
        if (acc >= ((int64_t)1 << 47) || -acc >= ((int64_t)1 << 47)) return LSL_TFLITE_EOVERFLOW;
        y = mbqm64(acc, m, s);
        out[r] = (int16_t)clamp64(y, I16_MIN, I16_MAX);
    }
    return LSL_TFLITE_OK;
}

/* One gate for one row: a = sat16(fc_x + fc_h), then sigmoid or tanh, into out (H). */
static int gate(const lsl_tflite_params *p, int g, const void *x, size_t x_off, const void *h, size_t h_off,
                int16_t *out, int16_t *tmp) {
    const lsl_tflite_gate *q = &p->gates[g];
    int32_t r;
    int rc = fully_connected(p, x, x_off, p->input_size, p->input_zero_point, q->input_weights, q->bias32,
                             q->bias64, q->input_multiplier, q->input_shift, out);
    if (rc) return rc;
    rc = fully_connected(p, h, h_off, p->hidden_size, p->output_zero_point, q->hidden_weights, NULL, NULL,
                         q->hidden_multiplier, q->hidden_shift, tmp);
    if (rc) return rc;
    for (r = 0; r < p->hidden_size; r++) {
        int16_t a = (int16_t)clamp64((int64_t)out[r] + tmp[r], I16_MIN, I16_MAX); /* SAT 1 */
        if (p->kernel == LSL_TFLITE_KERNEL_LITE)
            out[r] = g == LSL_TFLITE_GATE_CELL ? g16_tanh(a, 3) : g16_logistic(a, 3);
        else
            out[r] = g == LSL_TFLITE_GATE_CELL ? lsl_tflite_tanh(a, 0) : lsl_tflite_sigmoid(a);
    }
    return LSL_TFLITE_OK;
}

/* One step for one row: x at x_off (I values), hidden at h_off (H values, read, then
 * overwritten by the new h), cell (H, updated). Rows are independent, so updating row b in
 * place never affects another row. */
static int step_row(const lsl_tflite_params *p, const void *x, size_t x_off, void *hidden, size_t h_off,
                    int16_t *cell, int16_t *scratch) {
    const int32_t H = p->hidden_size;
    int16_t *f = scratch, *i = scratch + H, *g = scratch + 2 * H, *o = scratch + 3 * H, *tmp = scratch + 4 * H;
    const int single = p->single_rounding;
    int64_t lo = p->activation_bits == 8 ? -128 : I16_MIN, hi = p->activation_bits == 8 ? 127 : I16_MAX;
    int32_t r;
    int rc;
    if ((rc = gate(p, LSL_TFLITE_GATE_FORGET, x, x_off, hidden, h_off, f, tmp)) != 0) return rc;
    if ((rc = gate(p, LSL_TFLITE_GATE_INPUT, x, x_off, hidden, h_off, i, tmp)) != 0) return rc;
    if ((rc = gate(p, LSL_TFLITE_GATE_CELL, x, x_off, hidden, h_off, g, tmp)) != 0) return rc;
    if ((rc = gate(p, LSL_TFLITE_GATE_OUTPUT, x, x_off, hidden, h_off, o, tmp)) != 0) return rc;
    for (r = 0; r < H; r++) {
        /* SAT 2: each product requantized and clamped to int16, their sum saturated, then
         * the model's optional cell clip. int16 x int16 products are exact in int32. */
        const int lite = p->kernel == LSL_TFLITE_KERNEL_LITE;
        int64_t fc = lite ? rdbpot((int64_t)f[r] * cell[r], 15)
                          : mbqm((int64_t)f[r] * cell[r], p->forget_cell_multiplier, p->forget_cell_shift, single);
        int64_t ig = lite ? rdbpot((int64_t)i[r] * g[r], 30 + p->cell_scale_power)
                          : mbqm((int64_t)i[r] * g[r], p->input_cell_multiplier, p->input_cell_shift, single);
        int64_t c, h, t;
        fc = clamp64(fc, I16_MIN, I16_MAX);
        ig = clamp64(ig, I16_MIN, I16_MAX);
        c = clamp64(fc + ig, I16_MIN, I16_MAX);
        if (p->cell_clip > 0) c = clamp64(c, -(int64_t)p->cell_clip, p->cell_clip);
        cell[r] = (int16_t)c;
        t = lite ? g16_tanh((int32_t)c, 15 + p->cell_scale_power)
                 : lsl_tflite_tanh((int16_t)c, p->cell_scale_power + 12);
        h = mbqm((int64_t)o[r] * t, p->output_multiplier, p->output_shift, single);
        h = clamp64(h + p->hidden_zero_point, lo, hi); /* SAT 3 */
        if (p->activation_bits == 8)
            ((int8_t *)hidden)[h_off + (size_t)r] = (int8_t)h;
        else
            ((int16_t *)hidden)[h_off + (size_t)r] = (int16_t)h;
    }
    return LSL_TFLITE_OK;
}

int lsl_tflite_reset(const lsl_tflite_params *p, int32_t batch, void *hidden, int16_t *cell) {
    size_t k, n;
    int rc = lsl_tflite_check(p);
    if (rc) return rc;
    if (batch < 0 || !hidden || !cell) return LSL_TFLITE_EINVAL;
    n = (size_t)batch * (size_t)p->hidden_size;
    for (k = 0; k < n; k++) {
        if (p->activation_bits == 8)
            ((int8_t *)hidden)[k] = (int8_t)p->output_zero_point;
        else
            ((int16_t *)hidden)[k] = (int16_t)p->output_zero_point;
        cell[k] = 0;
    }
    return LSL_TFLITE_OK;
}

int lsl_tflite_step(const lsl_tflite_params *p, int32_t batch, const void *x, void *hidden, int16_t *cell,
                    int16_t *scratch) {
    int32_t b;
    int rc = lsl_tflite_check(p);
    if (rc) return rc;
    if (batch < 0 || (batch > 0 && (!x || !hidden || !cell || !scratch))) return LSL_TFLITE_EINVAL;
    for (b = 0; b < batch; b++) {
        rc = step_row(p, x, (size_t)b * (size_t)p->input_size, hidden, (size_t)b * (size_t)p->hidden_size,
                      cell + (size_t)b * (size_t)p->hidden_size, scratch);
        if (rc) return rc;
    }
    return LSL_TFLITE_OK;
}

int lsl_tflite_run(const lsl_tflite_params *p, int32_t batch, int32_t steps, int time_major, const void *x,
                   void *out, void *hidden, int16_t *cell, int16_t *scratch) {
    const size_t I = (size_t)(p ? p->input_size : 0), H = (size_t)(p ? p->hidden_size : 0);
    int32_t b, t;
    size_t r;
    int rc = lsl_tflite_check(p);
    if (rc) return rc;
    if (batch < 0 || steps < 0) return LSL_TFLITE_EINVAL;
    if (batch > 0 && steps > 0 && (!x || !out || !hidden || !cell || !scratch)) return LSL_TFLITE_EINVAL;
    for (t = 0; t < steps; t++) {
        for (b = 0; b < batch; b++) {
            /* row (b, t) of a (B, T, .) or (T, B, .) tensor */
            size_t row = time_major ? (size_t)t * (size_t)batch + (size_t)b : (size_t)b * (size_t)steps + (size_t)t;
            rc = step_row(p, x, row * I, hidden, (size_t)b * H, cell + (size_t)b * H, scratch);
            if (rc) return rc;
            for (r = 0; r < H; r++) {
                if (p->activation_bits == 8)
                    ((int8_t *)out)[row * H + r] = ((const int8_t *)hidden)[(size_t)b * H + r];
                else
                    ((int16_t *)out)[row * H + r] = ((const int16_t *)hidden)[(size_t)b * H + r];
            }
        }
    }
    return LSL_TFLITE_OK;
}
