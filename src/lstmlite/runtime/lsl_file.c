/*
 * lsl_file.c -- the bounds-checked .lsl parser and loader (format: see lsl.h).
 *
 * Every offset and size read from the file is checked against the file length with
 * overflow-safe arithmetic before it is used; any inconsistency is LSL_ERR_FORMAT,
 * never a crash. Fields are read a byte at a time, as little-endian, so the buffer
 * needs no alignment and a big-endian host reads the same values.
 */
#include <stdio.h>
#include <string.h>

#include "lsl_internal.h"

#define MAX_FILE_LAYERS 64
#define MAX_FILE_TENSORS 4096
#define NAME_BYTES 32
#define LAYER_RECORD 32
#define TENSOR_RECORD 64
#define COMPACT_VERSION 4 /* the compact table (see lsl.h); 1 to 3 are the fixed-record layout */
#define CHECKSUM_VERSION 5 /* the compact table followed by a CRC-32 of the file */
#define MAX_VIEWS 5       /* a compact record: the values and up to 4 companions (scale, mask, rowptr, bcol) */

typedef struct tensor_view {
    char name[NAME_BYTES + 8]; /* a compact record's base name (< 32 bytes) plus ".rowptr" and NUL */
    uint32_t dtype, ndim, dims[2];
    const unsigned char *data;
    uint64_t nbytes;
} tensor_view;

typedef struct file_view {
    const unsigned char *base;
    uint64_t size;
    uint32_t version, num_layers, num_tensors;
    int32_t head_mode, pooling;
    uint64_t layer_off, tensor_off, data_off;
    int keep_sparse; /* lsl_load's LSL_LOAD_KEEP_SPARSE */
} file_view;

/* One layer record, whatever the version wrote it as. */
typedef struct layer_rec {
    int32_t cell, input_size, hidden_size, proj_size, num_directions, has_bias, gate_fn, update_fn;
} layer_rec;

static uint32_t rd_u32(const unsigned char *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint64_t rd_u64(const unsigned char *p) { return (uint64_t)rd_u32(p) | ((uint64_t)rd_u32(p + 4) << 32); }
static int32_t rd_i32(const unsigned char *p) {
    uint32_t u = rd_u32(p);
    int32_t v;
    memcpy(&v, &u, 4);
    return v;
}
/* A little-endian float32: the bytes assembled as rd_u32 does, so a big-endian host reads
 * the same value (a memcpy of the bytes gave it byte-swapped: garbage weights, or a NaN
 * scale the packer refuses). GCC and clang make it one load on little-endian hosts. */
static float rd_f32(const unsigned char *p) {
    uint32_t u = rd_u32(p);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* [off, off + len) lies inside [0, size). */
static int in_bounds(uint64_t off, uint64_t len, uint64_t size) { return off <= size && len <= size - off; }

static int parse_compact(const unsigned char *p, size_t bytes, file_view *v);

/* CRC-32 (IEEE 802.3, reflected 0xEDB88320, as zlib's crc32) of n bytes, a nibble at a
 * time: a 16-entry table, so no initialisation and no 1 KB table in a small image. */
static uint32_t lsl_crc32(const unsigned char *p, size_t n) {
    static const uint32_t nibble[16] = {
        0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u, 0x4DB26158u, 0x5005713Cu,
        0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu, 0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu};
    uint32_t crc = 0xFFFFFFFFu;
    size_t i;
    for (i = 0; i < n; ++i) {
        crc ^= p[i];
        crc = (crc >> 4) ^ nibble[crc & 15u];
        crc = (crc >> 4) ^ nibble[crc & 15u];
    }
    return crc ^ 0xFFFFFFFFu;
}

static int parse_header(const void *file, size_t bytes, file_view *v) {
    const unsigned char *p = (const unsigned char *)file;
    uint32_t version, i;
    if (!file) return LSL_ERR_ARG;
    /* the 12 bytes every version starts with: magic and version */
    if (bytes < 12 || memcmp(p, "LSTMLITE", 8) != 0) return LSL_ERR_FORMAT;
    version = rd_u32(p + 8);
    if (version < 1 || version > LSL_FILE_VERSION) return LSL_ERR_VERSION;
    v->version = version;
    if (version >= CHECKSUM_VERSION) {
        /* checked before anything else is read: a flipped bit anywhere is refused here */
        if (bytes < 16) return LSL_ERR_FORMAT;
        if (lsl_crc32(p, bytes - 4) != rd_u32(p + bytes - 4)) return LSL_ERR_CHECKSUM;
        bytes -= 4;
    }
    if (version >= COMPACT_VERSION) return parse_compact(p, bytes, v);
    if (bytes < LSL_FILE_HEADER_BYTES) return LSL_ERR_FORMAT;
    if (rd_u32(p + 12) != LSL_FILE_HEADER_BYTES) return LSL_ERR_FORMAT;
    v->base = p;
    v->num_layers = rd_u32(p + 16);
    v->num_tensors = rd_u32(p + 20);
    v->head_mode = rd_i32(p + 24);
    v->pooling = rd_i32(p + 28);
    v->layer_off = rd_u64(p + 32);
    v->tensor_off = rd_u64(p + 40);
    v->data_off = rd_u64(p + 48);
    v->size = rd_u64(p + 56);
    if (v->size > bytes) return LSL_ERR_FORMAT; /* truncated */
    if (v->num_layers < 1 || v->num_layers > MAX_FILE_LAYERS) return LSL_ERR_FORMAT;
    if (v->num_tensors < 1 || v->num_tensors > MAX_FILE_TENSORS) return LSL_ERR_FORMAT;
    if (!in_bounds(v->layer_off, (uint64_t)v->num_layers * LAYER_RECORD, v->size)) return LSL_ERR_FORMAT;
    if (!in_bounds(v->tensor_off, (uint64_t)v->num_tensors * TENSOR_RECORD, v->size)) return LSL_ERR_FORMAT;
    if (v->data_off > v->size) return LSL_ERR_FORMAT;
    if (!in_bounds(rd_u64(p + 64), rd_u64(p + 72), v->size)) return LSL_ERR_FORMAT;
    for (i = 80; i < LSL_FILE_HEADER_BYTES; ++i)
        if (p[i] != 0) return LSL_ERR_FORMAT; /* reserved bytes */
    return LSL_OK;
}

/* The first file version that has a tensor dtype; 0 for an unknown one. */
static uint32_t dtype_version(uint32_t dtype) {
    switch (dtype) {
    case LSL_F32: case LSL_I8: return 1;
    case LSL_I8_SPARSE: case LSL_FILE_I32: case LSL_FILE_U16: return 2;
    case LSL_FILE_I4: case LSL_FILE_U8: case LSL_FILE_F32_MASKED: case LSL_FILE_I8_MASKED: case LSL_FILE_I4_MASKED:
    case LSL_FILE_F16:
        return 3;
    default: return 0;
    }
}

/* The checks every stored tensor passes, whatever the version wrote it as: a dtype
 * this version has, one or two dims in range (so products of dims fit in 64 bits), and
 * a byte count its dtype and dims allow. Sets dims[1] = 1 for a vector. */
static int check_view(const file_view *v, tensor_view *t) {
    uint64_t elems, esz;
    uint32_t j;
    if (dtype_version(t->dtype) == 0 || dtype_version(t->dtype) > v->version) return LSL_ERR_FORMAT;
    if (t->ndim != 1 && t->ndim != 2) return LSL_ERR_FORMAT;
    if (t->ndim == 1) t->dims[1] = 1;
    for (j = 0; j < 2; ++j)
        if (t->dims[j] == 0 || t->dims[j] > (1u << 30)) return LSL_ERR_FORMAT;
    elems = (uint64_t)t->dims[0] * t->dims[1];
    if (elems > ((uint64_t)1 << 32)) return LSL_ERR_FORMAT;
    switch (t->dtype) {
    case LSL_I8_SPARSE: /* logical (rows, cols); the data are 4 bytes per kept block */
        if (t->ndim != 2 || t->nbytes % 4 != 0 || t->nbytes / 4 > (uint64_t)t->dims[0] * ((t->dims[1] + 3) / 4))
            return LSL_ERR_FORMAT;
        break;
    case LSL_FILE_I4: /* rows of ceil(cols / 2) bytes */
        if (t->ndim != 2 || t->nbytes != (uint64_t)t->dims[0] * ((t->dims[1] + 1) / 2)) return LSL_ERR_FORMAT;
        break;
    case LSL_FILE_F32_MASKED: /* at most every element; the mask says how many exactly */
        if (t->ndim != 2 || t->nbytes % 4 != 0 || t->nbytes / 4 > elems) return LSL_ERR_FORMAT;
        break;
    case LSL_FILE_I8_MASKED:
        if (t->ndim != 2 || t->nbytes > elems) return LSL_ERR_FORMAT;
        break;
    case LSL_FILE_I4_MASKED:
        if (t->ndim != 2 || t->nbytes > (elems + 1) / 2) return LSL_ERR_FORMAT;
        break;
    default:
        esz = t->dtype == LSL_F32 || t->dtype == LSL_FILE_I32 ? 4
              : (t->dtype == LSL_FILE_U16 || t->dtype == LSL_FILE_F16 ? 2 : 1);
        if (t->dtype == LSL_FILE_F16 && t->ndim != 1) return LSL_ERR_FORMAT;
        if (t->nbytes != elems * esz) return LSL_ERR_FORMAT;
    }
    return LSL_OK;
}

/* Tensor record i of a fixed-record file (versions 1 to 3). */
static int tensor_at(const file_view *v, uint32_t i, tensor_view *t) {
    const unsigned char *r = v->base + v->tensor_off + (uint64_t)i * TENSOR_RECORD;
    uint64_t off;
    int rc;
    memcpy(t->name, r, NAME_BYTES);
    t->name[NAME_BYTES] = '\0';
    if (memchr(r, '\0', NAME_BYTES) == NULL) return LSL_ERR_FORMAT; /* names must be NUL-terminated */
    t->dtype = rd_u32(r + 32);
    t->ndim = rd_u32(r + 36);
    t->dims[0] = rd_u32(r + 40);
    t->dims[1] = rd_u32(r + 44);
    off = rd_u64(r + 48);
    t->nbytes = rd_u64(r + 56);
    if ((rc = check_view(v, t)) != LSL_OK) return rc;
    if (off > v->size - v->data_off || !in_bounds(v->data_off + off, t->nbytes, v->size)) return LSL_ERR_FORMAT;
    t->data = v->base + v->data_off + off;
    return LSL_OK;
}

/* ---- the compact table (version 4; layout in lsl.h) ----------------------------------
 * Records are variable-length and each is followed by its data, so nothing is found by
 * offset: a reader walks the records from the start, and every field is checked against
 * the bytes left before it is used. Nothing is aligned: the loader copies every value
 * out (memcpy or byte reads) before a kernel sees it. */

#define FLAG_2D 0x01         /* dims (rows, cols); else one dim */
#define FLAG_SCALE 0x02      /* NAME.scale follows the values (the codes' scales) */
#define FLAG_SCALE_F16 0x04  /* ... as IEEE half (else float32) */
#define FLAG_SCALE_ONE 0x08  /* ... one value for every row (else one per row) */
#define FLAG_KNOWN 0x0F      /* other bits must be zero: a later version's, not ours */

/* An unsigned LEB128 varint at *pos, which must end before `end`. At most 9 bytes (63
 * bits), so the value never overflows; callers bound it further. 0 when it does not fit. */
static int rd_varint(const unsigned char *p, uint64_t end, uint64_t *pos, uint64_t *out) {
    uint64_t value = 0;
    unsigned shift;
    for (shift = 0; shift < 63; shift += 7) {
        unsigned char b;
        if (*pos >= end) return 0; /* runs past the file */
        b = p[(*pos)++];
        value |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) {
            *out = value;
            return 1;
        }
    }
    return 0; /* a tenth byte: not a value this format writes */
}

/* A varint that must fit an int32 size field (at most 2^30, as the fixed records allow). */
static int rd_size(const unsigned char *p, uint64_t end, uint64_t *pos, int32_t *out) {
    uint64_t x;
    if (!rd_varint(p, end, pos, &x) || x > (1u << 30)) return 0;
    *out = (int32_t)x;
    return 1;
}

/* Layer record at *pos (advanced past it): u8 cell, u8 directions | has_bias << 2,
 * u8 gate_fn | update_fn << 4, varints input, hidden, proj. Values are checked by the
 * loader as for the fixed records. */
static int compact_layer(const file_view *v, uint64_t *pos, layer_rec *l) {
    const unsigned char *p = v->base;
    if (!in_bounds(*pos, 3, v->size)) return LSL_ERR_FORMAT;
    l->cell = p[*pos];
    if (p[*pos + 1] & ~0x07u) return LSL_ERR_FORMAT; /* bits this version does not define */
    l->num_directions = p[*pos + 1] & 3;
    l->has_bias = (p[*pos + 1] >> 2) & 1;
    l->gate_fn = p[*pos + 2] & 0x0F;
    l->update_fn = p[*pos + 2] >> 4;
    *pos += 3;
    if (!rd_size(p, v->size, pos, &l->input_size) || !rd_size(p, v->size, pos, &l->hidden_size) ||
        !rd_size(p, v->size, pos, &l->proj_size))
        return LSL_ERR_FORMAT;
    return LSL_OK;
}

/* A companion vector of record `base` (its scales, mask, row pointers or block
 * columns): `count` elements of `esz` bytes at *pos, which must lie inside the file. */
static int companion(const file_view *v, const tensor_view *base, const char *suffix, uint32_t dtype, uint64_t count,
                     uint64_t esz, uint64_t *pos, tensor_view *t) {
    if (count == 0 || count > (1u << 30) || !in_bounds(*pos, count * esz, v->size)) return LSL_ERR_FORMAT;
    sprintf(t->name, "%s%s", base->name, suffix); /* base names are < 32 bytes: fits */
    t->dtype = dtype;
    t->ndim = 1;
    t->dims[0] = (uint32_t)count;
    t->dims[1] = 1;
    t->nbytes = count * esz;
    t->data = v->base + *pos;
    *pos += t->nbytes;
    return check_view(v, t);
}

/* Whether a record's values are integer codes, which need scales. */
static int is_codes(uint32_t dtype) {
    return dtype == LSL_I8 || dtype == LSL_I8_SPARSE || dtype == LSL_FILE_I4 || dtype == LSL_FILE_I8_MASKED ||
           dtype == LSL_FILE_I4_MASKED;
}

/* The record at *pos (advanced past it and its data) as views: [0] the values, then its
 * companions under their version-3 names (NAME.scale, NAME.mask, NAME.rowptr,
 * NAME.bcol), so the loader finds them as it always did. */
static int compact_record(const file_view *v, uint64_t *pos, tensor_view *views, int *n) {
    const unsigned char *p = v->base;
    tensor_view *t = &views[0];
    uint64_t len, x, bcols = 0;
    uint32_t flags, j;
    int rc;
    *n = 0;
    if (!in_bounds(*pos, 1, v->size)) return LSL_ERR_FORMAT;
    len = p[(*pos)++];
    /* 1 to 31 name bytes, then dtype and flags; no NUL inside (names are C strings) */
    if (len == 0 || len >= NAME_BYTES || !in_bounds(*pos, len + 2, v->size)) return LSL_ERR_FORMAT;
    if (memchr(p + *pos, '\0', (size_t)len) != NULL) return LSL_ERR_FORMAT;
    memcpy(t->name, p + *pos, (size_t)len);
    t->name[len] = '\0';
    *pos += len;
    t->dtype = p[(*pos)++];
    flags = p[(*pos)++];
    if (flags & ~(uint32_t)FLAG_KNOWN) return LSL_ERR_FORMAT;
    /* index and mask dtypes exist only as companions here */
    if (t->dtype == LSL_FILE_I32 || t->dtype == LSL_FILE_U16 || t->dtype == LSL_FILE_U8) return LSL_ERR_FORMAT;
    /* codes come with their scales, and only codes have them */
    if (!!(flags & FLAG_SCALE) != is_codes(t->dtype) || (!(flags & FLAG_SCALE) && (flags & ~FLAG_2D)))
        return LSL_ERR_FORMAT;
    t->ndim = (flags & FLAG_2D) ? 2 : 1;
    t->dims[1] = 1;
    for (j = 0; j < t->ndim; ++j) {
        if (!rd_varint(p, v->size, pos, &x) || x > (1u << 30)) return LSL_ERR_FORMAT;
        t->dims[j] = (uint32_t)x;
    }
    if (!rd_varint(p, v->size, pos, &t->nbytes)) return LSL_ERR_FORMAT;
    if (t->dtype == LSL_I8_SPARSE && (!rd_varint(p, v->size, pos, &bcols) || bcols > (1u << 30)))
        return LSL_ERR_FORMAT;
    if ((rc = check_view(v, t)) != LSL_OK) return rc; /* also bounds nbytes by the dims */
    if (!in_bounds(*pos, t->nbytes, v->size)) return LSL_ERR_FORMAT;
    t->data = p + *pos;
    *pos += t->nbytes;
    *n = 1;
    if (flags & FLAG_SCALE) {
        rc = companion(v, t, ".scale", (flags & FLAG_SCALE_F16) ? LSL_FILE_F16 : LSL_F32,
                       (flags & FLAG_SCALE_ONE) ? 1 : t->dims[0], (flags & FLAG_SCALE_F16) ? 2 : 4, pos, &views[(*n)++]);
        if (rc != LSL_OK) return rc;
    }
    if (t->dtype == LSL_FILE_F32_MASKED || t->dtype == LSL_FILE_I8_MASKED || t->dtype == LSL_FILE_I4_MASKED) {
        x = ((uint64_t)t->dims[0] * t->dims[1] + 7) / 8; /* one bit per element */
        if ((rc = companion(v, t, ".mask", LSL_FILE_U8, x, 1, pos, &views[(*n)++])) != LSL_OK) return rc;
    }
    if (t->dtype == LSL_I8_SPARSE) {
        rc = companion(v, t, ".rowptr", LSL_FILE_I32, (uint64_t)t->dims[0] + 1, 4, pos, &views[(*n)++]);
        if (rc != LSL_OK) return rc;
        if ((rc = companion(v, t, ".bcol", LSL_FILE_U16, bcols, 2, pos, &views[(*n)++])) != LSL_OK) return rc;
    }
    return LSL_OK;
}

/* Header of a compact file after magic and version: u8 head_mode, u8 pooling,
 * u8 num_layers, varint num_tensors (records), varint meta_bytes; then the layer
 * records, the metadata and the tensor records. The whole table is walked once here,
 * so a truncated file, a record running past the end or trailing bytes are refused
 * before anything is loaded. */
static int parse_compact(const unsigned char *p, size_t bytes, file_view *v) {
    uint64_t pos = 15, x, meta;
    tensor_view views[MAX_VIEWS];
    layer_rec l;
    uint32_t k;
    int n, rc;
    v->base = p;
    v->size = bytes;
    if (bytes < pos) return LSL_ERR_FORMAT;
    v->head_mode = p[12];
    v->pooling = p[13];
    v->num_layers = p[14];
    if (!rd_varint(p, v->size, &pos, &x) || x < 1 || x > MAX_FILE_TENSORS) return LSL_ERR_FORMAT;
    v->num_tensors = (uint32_t)x;
    if (!rd_varint(p, v->size, &pos, &meta)) return LSL_ERR_FORMAT;
    if (v->num_layers < 1 || v->num_layers > MAX_FILE_LAYERS) return LSL_ERR_FORMAT;
    v->layer_off = pos;
    for (k = 0; k < v->num_layers; ++k)
        if ((rc = compact_layer(v, &pos, &l)) != LSL_OK) return rc;
    if (!in_bounds(pos, meta, v->size)) return LSL_ERR_FORMAT; /* the loader never reads it */
    v->tensor_off = pos + meta;
    v->data_off = 0; /* each record carries its data */
    pos = v->tensor_off;
    for (k = 0; k < v->num_tensors; ++k)
        if ((rc = compact_record(v, &pos, views, &n)) != LSL_OK) return rc;
    return pos == v->size ? LSL_OK : LSL_ERR_FORMAT; /* the file ends with the last record */
}

/* Layer record k, any version. */
static int layer_at(const file_view *v, uint32_t k, layer_rec *l) {
    uint64_t pos = v->layer_off;
    uint32_t i;
    int rc;
    if (v->version >= COMPACT_VERSION) {
        for (i = 0; i <= k; ++i)
            if ((rc = compact_layer(v, &pos, l)) != LSL_OK) return rc;
        return LSL_OK;
    }
    {
        const unsigned char *r = v->base + v->layer_off + (uint64_t)k * LAYER_RECORD;
        l->cell = rd_i32(r);
        l->input_size = rd_i32(r + 4);
        l->hidden_size = rd_i32(r + 8);
        l->proj_size = rd_i32(r + 12);
        l->num_directions = rd_i32(r + 16);
        l->has_bias = rd_i32(r + 20);
        l->gate_fn = rd_i32(r + 24);
        l->update_fn = rd_i32(r + 28);
    }
    return LSL_OK;
}

/* Find a tensor of a compact file by name: walks every record (the table holds a few
 * dozen; the header walk has checked them all once). 1 found, 0 absent, <0 error. */
static int find_compact(const file_view *v, const char *name, tensor_view *out) {
    tensor_view views[MAX_VIEWS];
    uint64_t pos = v->tensor_off;
    uint32_t i;
    int j, n, rc, found = 0;
    for (i = 0; i < v->num_tensors; ++i) {
        if ((rc = compact_record(v, &pos, views, &n)) != LSL_OK) return rc;
        for (j = 0; j < n && j < MAX_VIEWS; ++j) { /* n <= MAX_VIEWS; GCC 12 -O3 -march=native cannot tell */
            if (strcmp(views[j].name, name) != 0) continue;
            if (found) return LSL_ERR_FORMAT; /* a duplicate name: which one is meant? */
            *out = views[j];
            found = 1;
        }
    }
    return found;
}

/* Find a tensor by name; 1 found, 0 absent, <0 error (also on a duplicate name). */
static int find(const file_view *v, const char *name, tensor_view *out) {
    uint32_t i;
    int found = 0;
    tensor_view t;
    if (v->version >= COMPACT_VERSION) return find_compact(v, name, out);
    for (i = 0; i < v->num_tensors; ++i) {
        int rc = tensor_at(v, i, &t);
        if (rc != LSL_OK) return rc;
        if (strcmp(t.name, name) == 0) {
            if (found) return LSL_ERR_FORMAT;
            *out = t;
            found = 1;
        }
    }
    return found;
}

/* IEEE half (little-endian bytes) to float, exactly (every half is a float). */
static float half_at(const unsigned char *p) {
    const uint32_t h = (uint32_t)p[0] | ((uint32_t)p[1] << 8);
    const uint32_t sign = (h >> 15) << 31, exp = (h >> 10) & 0x1F, man = h & 0x3FF;
    uint32_t bits;
    float f;
    if (exp == 0) { /* zero or subnormal: man * 2^-24 */
        f = (float)man * 5.9604644775390625e-8f;
        return sign ? -f : f;
    }
    bits = sign | (exp == 31 ? 0x7F800000u : (exp + 112) << 23) | (man << 13);
    memcpy(&f, &bits, sizeof(f));
    return f;
}

/* Value i of a 1-D float tensor stored as LSL_F32 or LSL_FILE_F16 (any alignment). */
static float float_at(const tensor_view *t, size_t i) {
    if (t->dtype == LSL_FILE_F16) return half_at(t->data + 2 * i);
    return rd_f32(t->data + 4 * i);
}

/* n values of a 1-D float tensor into dst (float32). */
static void read_floats(const tensor_view *t, float *dst, size_t n) {
    size_t i;
    for (i = 0; i < n; ++i) dst[i] = float_at(t, i); /* any alignment, any host byte order */
}

/* The scales "NAME.scale" of an int8 matrix, checked: one per row, or (version 3 on)
 * one for every row (a matrix quantized per tensor). */
static int find_scale(const file_view *v, const char *name, int32_t rows, tensor_view *s) {
    char sname[NAME_BYTES + 8];
    int rc;
    sprintf(sname, "%s.scale", name);
    rc = find(v, sname, s);
    if (rc < 0) return rc;
    if (rc == 0 || (s->dtype != LSL_F32 && s->dtype != LSL_FILE_F16) || s->ndim != 1) return LSL_ERR_FORMAT;
    if (s->dims[0] != (uint32_t)rows && !(s->dims[0] == 1 && v->version >= 3)) return LSL_ERR_FORMAT;
    return LSL_OK;
}

/* The scale of each of `rows` rows into dst (one stored value serves every row). */
static void read_scales(const tensor_view *s, float *dst, size_t rows) {
    size_t i;
    if (s->dims[0] == rows) {
        read_floats(s, dst, rows);
        return;
    }
    for (i = 0; i < rows; ++i) dst[i] = float_at(s, 0);
}

/* A block-sparse matrix (compressed rows csr, values t, scales s; checked) unpacked into
 * the dense int8 layout: the codes expanded row-major in the arena, then packed. */
static int load_sparse_dense(lsl_arena *a, const lsl_csr *csr, const tensor_view *t, const tensor_view *s,
                             int32_t rows, int32_t cols, int32_t act, lsl_matrix *m) {
    const size_t bytes = lsl_matrix_packed_bytes(rows, cols, LSL_I8, act);
    void *buf;
    float *scale;
    int8_t *codes;
    if (bytes == 0) return LSL_ERR_FORMAT;
    buf = lsl_take(a, bytes);
    scale = (float *)lsl_take(a, lsl_fl((size_t)rows));
    codes = (int8_t *)lsl_take(a, (size_t)rows * (size_t)cols);
    if (!a->base) return LSL_OK; /* sizing pass */
    if (!buf || !scale || !codes) return LSL_ERR_BUFFER;
    read_scales(s, scale, (size_t)rows);
    lsl_sparse_expand_csr(rows, cols, csr, (const int8_t *)t->data, codes);
    if (lsl_matrix_pack(m, rows, cols, LSL_I8, act, codes, scale, buf, bytes) != LSL_OK) return LSL_ERR_FORMAT;
    m->reserved |= LSL_MATRIX_FROM_SPARSE;
    return LSL_OK;
}

/* A block-sparse matrix: values tensor t (rows x cols logical), NAME.rowptr, NAME.bcol
 * and NAME.scale; packed straight from the file bytes (read as little-endian), or
 * unpacked dense where the active table runs it faster so (lsl_load). */
static int load_sparse(const file_view *v, lsl_arena *a, const char *name, const tensor_view *t, int32_t rows,
                       int32_t cols, int32_t act, lsl_matrix *m) {
    tensor_view rpt, bct, s;
    char sub[NAME_BYTES + 8];
    const unsigned char *last;
    uint64_t blocks;
    lsl_csr csr;
    size_t bytes;
    void *buf;
    float *scale;
    int rc;
    sprintf(sub, "%s.rowptr", name);
    if ((rc = find(v, sub, &rpt)) < 0) return rc;
    if (rc == 0 || rpt.dtype != LSL_FILE_I32 || rpt.ndim != 1 || rpt.dims[0] != (uint32_t)rows + 1)
        return LSL_ERR_FORMAT;
    sprintf(sub, "%s.bcol", name);
    if ((rc = find(v, sub, &bct)) < 0) return rc;
    if (rc == 0 || bct.dtype != LSL_FILE_U16 || bct.ndim != 1) return LSL_ERR_FORMAT;
    if ((rc = find_scale(v, name, rows, &s)) != LSL_OK) return rc;
    /* the block count must fit the values and the column indices before the packer
     * walks them (it checks the rows' order and ranges itself) */
    last = rpt.data + 4 * (size_t)rows;
    blocks = (uint64_t)last[0] | ((uint64_t)last[1] << 8) | ((uint64_t)last[2] << 16) | ((uint64_t)last[3] << 24);
    if (blocks * 4 != t->nbytes || blocks > bct.dims[0]) return LSL_ERR_FORMAT;
    csr.rowptr = rpt.data;
    csr.bcol = bct.data;
    csr.le = 1;
    bytes = lsl_sparse_bytes_csr(rows, cols, act, &csr, (const int8_t *)t->data);
    if (bytes == 0) return LSL_ERR_FORMAT;
    if (!v->keep_sparse && lsl_sparse_runs_dense(lsl_kernels_active()->level, act, rows, cols, &csr))
        return load_sparse_dense(a, &csr, t, &s, rows, cols, act, m);
    buf = lsl_take(a, bytes);
    scale = (float *)lsl_take(a, lsl_fl((size_t)rows));
    if (!a->base) return LSL_OK; /* sizing pass */
    if (!buf || !scale) return LSL_ERR_BUFFER;
    read_scales(&s, scale, (size_t)rows);
    rc = lsl_sparse_pack_csr(m, rows, cols, act, &csr, (const int8_t *)t->data, scale, buf, bytes);
    return rc == LSL_OK ? LSL_OK : LSL_ERR_FORMAT;
}

/* What a stored matrix holds once expanded: 1 int codes (LSL_I8, int4, their bitmask
 * forms), 0 floats (LSL_F32, its bitmask form), -1 neither (block sparse, indices). */
static int stored_codes(uint32_t dtype) {
    if (dtype == LSL_I8 || dtype == LSL_FILE_I4 || dtype == LSL_FILE_I8_MASKED || dtype == LSL_FILE_I4_MASKED) return 1;
    if (dtype == LSL_F32 || dtype == LSL_FILE_F32_MASKED) return 0;
    return -1;
}

/* Code i of int4 codes packed two per byte (even index in the low nibble). */
static int8_t nibble(const unsigned char *p, uint64_t i) {
    int q = (p[i >> 1] >> ((i & 1) * 4)) & 0xF;
    return (int8_t)(q > 7 ? q - 16 : q);
}

/* Expand stored matrix t (rows x cols, any form stored_codes accepts) into row-major
 * int8 codes (`codes`) or floats (`vals`); the bitmask forms read NAME.mask, checked:
 * its size, no bits past the end, and as many values as set bits. */
static int expand(const file_view *v, const char *name, const tensor_view *t, int32_t rows, int32_t cols,
                  int8_t *codes, float *vals) {
    const uint64_t n = (uint64_t)rows * (uint64_t)cols;
    uint64_t i, k = 0, nnz = 0, want;
    tensor_view mt;
    char sub[NAME_BYTES + 8];
    int rc;
    if (t->dtype == LSL_F32) {
        for (i = 0; i < n; ++i) vals[i] = rd_f32(t->data + 4 * i);
        return LSL_OK;
    }
    if (t->dtype == LSL_I8) {
        memcpy(codes, t->data, (size_t)n);
        return LSL_OK;
    }
    if (t->dtype == LSL_FILE_I4) {
        const uint64_t stride = ((uint64_t)cols + 1) / 2;
        for (i = 0; i < n; ++i) codes[i] = nibble(t->data + (i / (uint64_t)cols) * stride, i % (uint64_t)cols);
        return LSL_OK;
    }
    sprintf(sub, "%s.mask", name);
    if ((rc = find(v, sub, &mt)) < 0) return rc;
    if (rc == 0 || mt.dtype != LSL_FILE_U8 || mt.ndim != 1 || mt.dims[0] != (n + 7) / 8) return LSL_ERR_FORMAT;
    for (i = 0; i < mt.dims[0]; ++i) {
        unsigned b = mt.data[i];
        for (; b; b &= b - 1) ++nnz;
    }
    if (n % 8 && (mt.data[n / 8] >> (n % 8)) != 0) return LSL_ERR_FORMAT;
    want = t->dtype == LSL_FILE_F32_MASKED ? 4 * nnz : (t->dtype == LSL_FILE_I8_MASKED ? nnz : (nnz + 1) / 2);
    if (t->nbytes != want) return LSL_ERR_FORMAT;
    for (i = 0; i < n; ++i) {
        const int kept = (mt.data[i >> 3] >> (i & 7)) & 1;
        if (t->dtype == LSL_FILE_F32_MASKED) {
            if (kept)
                vals[i] = rd_f32(t->data + 4 * k++);
            else
                vals[i] = 0.0f;
        } else if (!kept) {
            codes[i] = 0;
        } else {
            codes[i] = t->dtype == LSL_FILE_I8_MASKED ? (int8_t)t->data[k] : nibble(t->data, k);
            ++k;
        }
    }
    return LSL_OK;
}

/* act for kernels that take plain 8-bit dynamic codes (the sparse products, low-rank
 * factors, every matrix but the input projections and the recurrent ones): LSL_ACT_DYN16
 * and LSL_ACT_DYN7 narrowed to LSL_ACT_DYN8, any other act as it is. */
static int32_t act_8bit(int32_t act) { return act == LSL_ACT_DYN16 || act == LSL_ACT_DYN7 ? LSL_ACT_DYN8 : act; }

/* Load the stored matrix `name` (rows x cols) into m: dense, int4 and bitmask forms are
 * expanded and packed as LSL_F32 / LSL_I8, the block-sparse form packed as such.
 * Missing: LSL_ERR_FORMAT. */
static int load_stored_matrix(const file_view *v, lsl_arena *a, const char *name, int32_t rows, int32_t cols,
                              int32_t act, lsl_matrix *m) {
    tensor_view t, s;
    size_t bytes, n = (size_t)rows * (size_t)cols;
    void *buf;
    float *src;
    int8_t *codes = NULL;
    int32_t dtype;
    int kind, rc = find(v, name, &t);
    if (rc < 0) return rc;
    if (rc == 0 || t.ndim != 2 || t.dims[0] != (uint32_t)rows || t.dims[1] != (uint32_t)cols) return LSL_ERR_FORMAT;
    if (t.dtype == LSL_I8_SPARSE) /* the sparse kernels take 8-bit activations */
        return load_sparse(v, a, name, &t, rows, cols, act_8bit(act), m);
    if ((kind = stored_codes(t.dtype)) < 0) return LSL_ERR_FORMAT;
    dtype = kind ? LSL_I8 : LSL_F32;
    if (!kind) act = LSL_ACT_FLOAT;
    bytes = lsl_matrix_packed_bytes(rows, cols, dtype, act);
    if (bytes == 0) return LSL_ERR_FORMAT;
    if (kind && (rc = find_scale(v, name, rows, &s)) != LSL_OK) return rc;
    /* Both passes take the same: the packed matrix, then aligned copies of what the
     * packer reads (the scales, or the float values: they may sit unaligned in the file
     * or be stored in another form), and expanded codes where the file has no int8 ones. */
    buf = lsl_take(a, bytes);
    src = (float *)lsl_take(a, lsl_fl(kind ? (size_t)rows : n));
    if (kind && t.dtype != LSL_I8) codes = (int8_t *)lsl_take(a, n);
    if (!a->base) return LSL_OK; /* sizing pass */
    if (!buf || !src || (kind && t.dtype != LSL_I8 && !codes)) return LSL_ERR_BUFFER;
    if (kind) {
        read_scales(&s, src, (size_t)rows);
        if (codes && (rc = expand(v, name, &t, rows, cols, codes, NULL)) != LSL_OK) return rc;
        rc = lsl_matrix_pack(m, rows, cols, LSL_I8, act == LSL_ACT_DYN7 ? LSL_ACT_DYN8 : act,
                             codes ? (const void *)codes : (const void *)t.data, src, buf, bytes);
        /* 7-bit activations only where the weights are 7-bit (the packer's LSL_MATRIX_W7) */
        if (rc == LSL_OK && act == LSL_ACT_DYN7 && (m->reserved & LSL_MATRIX_W7)) m->act = LSL_ACT_DYN7;
    } else {
        if ((rc = expand(v, name, &t, rows, cols, NULL, src)) != LSL_OK) return rc;
        rc = lsl_matrix_pack(m, rows, cols, LSL_F32, act, src, NULL, buf, bytes);
    }
    return rc == LSL_OK ? LSL_OK : LSL_ERR_FORMAT;
}

/* Load matrix `name` (rows x cols): stored whole as NAME, or low-rank as NAME.u (rows x
 * r) and NAME.v (r x cols). Missing: LSL_ERR_FORMAT. */
static int load_matrix(const file_view *v, lsl_arena *a, const char *name, int32_t rows, int32_t cols, int32_t act,
                       lsl_matrix *m) {
    tensor_view t;
    char sub[NAME_BYTES + 8];
    lsl_matrix *factors;
    int32_t rank;
    int rc = find(v, name, &t);
    if (rc != 0) return rc < 0 ? rc : load_stored_matrix(v, a, name, rows, cols, act, m);
    act = act_8bit(act); /* a low-rank matrix's factors: 8-bit activations */
    sprintf(sub, "%s.v", name);
    if ((rc = find(v, sub, &t)) <= 0) return rc < 0 ? rc : LSL_ERR_FORMAT;
    if (t.ndim != 2 || t.dims[0] < 1 || t.dims[0] > (1u << 20)) return LSL_ERR_FORMAT;
    rank = (int32_t)t.dims[0];
    factors = (lsl_matrix *)lsl_take(a, 2 * sizeof(lsl_matrix));
    if (a->base && !factors) return LSL_ERR_BUFFER;
    if ((rc = load_stored_matrix(v, a, sub, rank, cols, act, factors ? &factors[0] : NULL)) != LSL_OK) return rc;
    sprintf(sub, "%s.u", name);
    if ((rc = load_stored_matrix(v, a, sub, rows, rank, act, factors ? &factors[1] : NULL)) != LSL_OK) return rc;
    if (!a->base) return LSL_OK; /* sizing pass */
    return lsl_matrix_lowrank(m, factors) == LSL_OK ? LSL_OK : LSL_ERR_FORMAT;
}

static int load_vector(const file_view *v, lsl_arena *a, const char *name, int32_t n, const float **out) {
    tensor_view t;
    float *dst;
    int rc = find(v, name, &t);
    *out = NULL;
    if (rc < 0) return rc;
    if (rc == 0 || (t.dtype != LSL_F32 && t.dtype != LSL_FILE_F16) || t.ndim != 1 || t.dims[0] != (uint32_t)n)
        return LSL_ERR_FORMAT;
    dst = (float *)lsl_take(a, lsl_fl((size_t)n));
    if (a->base && !dst) return LSL_ERR_BUFFER;
    if (dst) read_floats(&t, dst, (size_t)n);
    *out = dst;
    return LSL_OK;
}

/* Stored matrix `name` as row-major floats in the arena (codes times their row scales);
 * *rows / *cols receive its shape. Temporaries are taken in both passes. */
static int load_floats(const file_view *v, lsl_arena *a, const char *name, uint32_t *rows, uint32_t *cols,
                       float **out) {
    tensor_view t, s;
    size_t n, i;
    int8_t *codes = NULL;
    float *vals;
    int kind, rc = find(v, name, &t);
    *out = NULL;
    if (rc < 0) return rc;
    if (rc == 0 || t.ndim != 2 || (kind = stored_codes(t.dtype)) < 0) return LSL_ERR_FORMAT;
    *rows = t.dims[0];
    *cols = t.dims[1];
    n = (size_t)t.dims[0] * t.dims[1];
    if (kind && (rc = find_scale(v, name, (int32_t)t.dims[0], &s)) != LSL_OK) return rc;
    vals = (float *)lsl_take(a, lsl_fl(n));
    if (kind) codes = (int8_t *)lsl_take(a, n);
    if (!a->base) return LSL_OK; /* sizing pass */
    if (!vals || (kind && !codes)) return LSL_ERR_BUFFER;
    if ((rc = expand(v, name, &t, (int32_t)t.dims[0], (int32_t)t.dims[1], codes, kind ? NULL : vals)) != LSL_OK)
        return rc;
    for (i = 0; kind && i < n; ++i) {
        vals[i] = (float)codes[i] * float_at(&s, s.dims[0] == 1 ? 0 : i / t.dims[1]);
    }
    *out = vals;
    return LSL_OK;
}

/* A low-rank embedding "emb.u" (V x r) "emb.v" (r x D): the table U V, expanded at load
 * (lookups stay one row copy; the file keeps only the factors). */
static int load_lowrank_embedding(const file_view *v, lsl_arena *a, lsl_embedding *e) {
    uint32_t ur = 0, uc = 0, vr = 0, vc = 0;
    float *u, *w, *table;
    size_t i, j, r;
    int rc;
    if ((rc = load_floats(v, a, "emb.u", &ur, &uc, &u)) != LSL_OK) return rc;
    if ((rc = load_floats(v, a, "emb.v", &vr, &vc, &w)) != LSL_OK) return rc;
    if (uc != vr || ur > (1u << 30) || vc > (1u << 30) || (uint64_t)ur * vc > ((uint64_t)1 << 32))
        return LSL_ERR_FORMAT;
    e->num = (int32_t)ur;
    e->dim = (int32_t)vc;
    e->dtype = LSL_F32;
    table = (float *)lsl_take(a, lsl_fl((size_t)ur * vc));
    if (!a->base) return LSL_OK;
    if (!table) return LSL_ERR_BUFFER;
    for (i = 0; i < ur; ++i)
        for (j = 0; j < vc; ++j) {
            float acc = 0.0f;
            for (r = 0; r < uc; ++r) acc += u[i * uc + r] * w[r * vc + j];
            table[i * vc + j] = acc;
        }
    e->table = table;
    return LSL_OK;
}

int lsl_load(const void *file, size_t file_bytes, int32_t act, void *arena_buf, size_t arena_bytes,
             const lsl_model **model_out, size_t *need) {
    file_view v;
    lsl_arena a;
    lsl_model *model;
    lsl_layer *layers;
    tensor_view t;
    uint32_t k;
    int rc;
    char name[NAME_BYTES];
    int32_t act8, act_rec;
    const int keep_sparse = (act & LSL_LOAD_KEEP_SPARSE) != 0, h7 = (act & LSL_LOAD_H7) != 0;

    act &= ~(LSL_LOAD_KEEP_SPARSE | LSL_LOAD_H7);
    if (act != LSL_ACT_FLOAT && act != LSL_ACT_DYN8 && act != LSL_ACT_DYN16) return LSL_ERR_ARG;
    if (h7 && act == LSL_ACT_FLOAT) return LSL_ERR_ARG; /* 7-bit states are a dynamic mode */
    /* LSL_ACT_DYN16 is for the input projections (w_ih); every other matrix: 8 bits, or
     * 7 for the recurrent ones with LSL_LOAD_H7 (where their weights are 7-bit) */
    act8 = act_8bit(act);
    act_rec = h7 ? LSL_ACT_DYN7 : act8;
    rc = parse_header(file, file_bytes, &v);
    if (rc != LSL_OK) return rc;
    v.keep_sparse = keep_sparse;
    if (arena_buf && ((uintptr_t)arena_buf) % LSL_ALIGN) return LSL_ERR_ARG;
    a.base = (char *)arena_buf;
    a.used = 0;
    a.cap = arena_buf ? arena_bytes : (size_t)-1;
    model = (lsl_model *)lsl_take(&a, sizeof(lsl_model));
    layers = (lsl_layer *)lsl_take(&a, sizeof(lsl_layer) * v.num_layers);
    if (arena_buf && (!model || !layers)) return LSL_ERR_BUFFER;
    if (model) {
        memset(model, 0, sizeof(*model));
        memset(layers, 0, sizeof(lsl_layer) * v.num_layers);
        model->num_layers = (int32_t)v.num_layers;
        model->layers = layers;
        model->head_mode = v.head_mode;
        model->pooling = v.pooling;
    }
    for (k = 0; k < v.num_layers; ++k) {
        layer_rec rec;
        lsl_layer l;
        int32_t d, g, has_bias;
        if ((rc = layer_at(&v, k, &rec)) != LSL_OK) return rc;
        has_bias = rec.has_bias;
        memset(&l, 0, sizeof(l));
        l.cell = rec.cell;
        l.input_size = rec.input_size;
        l.hidden_size = rec.hidden_size;
        l.proj_size = rec.proj_size;
        l.num_directions = rec.num_directions;
        if ((l.cell != LSL_LSTM && l.cell != LSL_GRU && !(l.cell == LSL_FASTGRNN && v.version >= 3)) ||
            (l.num_directions != 1 && l.num_directions != 2))
            return LSL_ERR_FORMAT;
        if (l.cell == LSL_FASTGRNN) {
            l.gate_fn = rec.gate_fn;
            l.update_fn = rec.update_fn;
            if ((l.gate_fn != LSL_FN_SIGMOID && l.gate_fn != LSL_FN_TANH) ||
                (l.update_fn != LSL_FN_SIGMOID && l.update_fn != LSL_FN_TANH) || l.num_directions != 1 ||
                has_bias != 1 || l.proj_size != 0)
                return LSL_ERR_FORMAT;
        }
        if (l.input_size <= 0 || l.hidden_size <= 0 || l.hidden_size > (1 << 20) || l.input_size > (1 << 24) ||
            l.proj_size < 0 || l.proj_size >= l.hidden_size || (has_bias != 0 && has_bias != 1))
            return LSL_ERR_FORMAT;
        if (l.proj_size > 0 && l.cell != LSL_LSTM) return LSL_ERR_FORMAT;
        g = l.cell == LSL_LSTM ? 4 : (l.cell == LSL_GRU ? 3 : 1);
        for (d = 0; d < l.num_directions; ++d) {
            lsl_direction *dr = &l.dir[d];
            int32_t O = l.proj_size > 0 ? l.proj_size : l.hidden_size;
            sprintf(name, "l%u.%d.w_ih", (unsigned)k, (int)d);
            if ((rc = load_matrix(&v, &a, name, g * l.hidden_size, l.input_size, act, &dr->w_ih)) != LSL_OK) return rc;
            sprintf(name, "l%u.%d.w_hh", (unsigned)k, (int)d);
            if ((rc = load_matrix(&v, &a, name, g * l.hidden_size, O, act_rec, &dr->w_hh)) != LSL_OK) return rc;
            if (l.proj_size > 0) {
                sprintf(name, "l%u.%d.w_hr", (unsigned)k, (int)d);
                if ((rc = load_matrix(&v, &a, name, l.proj_size, l.hidden_size, act_rec, &dr->w_hr)) != LSL_OK)
                    return rc;
            }
            if (has_bias) {
                sprintf(name, "l%u.%d.b_ih", (unsigned)k, (int)d);
                if ((rc = load_vector(&v, &a, name, g * l.hidden_size, &dr->b_ih)) != LSL_OK) return rc;
                sprintf(name, "l%u.%d.b_hh", (unsigned)k, (int)d);
                if ((rc = load_vector(&v, &a, name, g * l.hidden_size, &dr->b_hh)) != LSL_OK) return rc;
            }
            if (l.cell == LSL_FASTGRNN) {
                const float *zn;
                sprintf(name, "l%u.%d.zn", (unsigned)k, (int)d);
                if ((rc = load_vector(&v, &a, name, 2, &zn)) != LSL_OK) return rc;
                if (zn) { /* fill pass (the check refuses non-finite values) */
                    dr->zeta = zn[0];
                    dr->nu = zn[1];
                }
            }
        }
        if (layers) layers[k] = l;
    }

    rc = find(&v, "emb", &t);
    if (rc < 0) return rc;
    if (rc == 1) {
        lsl_embedding e;
        int kind = stored_codes(t.dtype);
        size_t n;
        void *tab;
        memset(&e, 0, sizeof(e));
        if (t.ndim != 2 || kind < 0) return LSL_ERR_FORMAT;
        e.num = (int32_t)t.dims[0];
        e.dim = (int32_t)t.dims[1];
        e.dtype = kind ? LSL_I8 : LSL_F32;
        n = (size_t)e.num * (size_t)e.dim;
        /* int4 and bitmask tables are expanded to int8 codes / floats (one row per token) */
        tab = lsl_take(&a, kind ? n : lsl_fl(n));
        if (tab) {
            rc = expand(&v, "emb", &t, e.num, e.dim, kind ? (int8_t *)tab : NULL, kind ? NULL : (float *)tab);
            if (rc != LSL_OK) return rc;
        }
        e.table = tab;
        if (kind) { /* per-row scales, or one for all rows */
            tensor_view es;
            float *sc;
            if ((rc = find_scale(&v, "emb", e.num, &es)) != LSL_OK) return rc;
            sc = (float *)lsl_take(&a, lsl_fl((size_t)e.num));
            if (a.base && !sc) return LSL_ERR_BUFFER;
            if (sc) read_scales(&es, sc, (size_t)e.num);
            e.scale = sc;
        }
        if (a.base && !e.table) return LSL_ERR_BUFFER;
        if (model) model->embedding = e;
    } else if ((rc = find(&v, "emb.v", &t)) != 0) {
        lsl_embedding e;
        if (rc < 0) return rc;
        memset(&e, 0, sizeof(e));
        if ((rc = load_lowrank_embedding(&v, &a, &e)) != LSL_OK) return rc;
        if (model) model->embedding = e;
    }

    if (v.head_mode != LSL_HEAD_NONE) {
        layer_rec top;
        int32_t top_out, feat;
        lsl_matrix head;
        const float *bias = NULL;
        memset(&head, 0, sizeof(head));
        if ((rc = layer_at(&v, v.num_layers - 1, &top)) != LSL_OK) return rc;
        top_out = top.proj_size > 0 ? top.proj_size : top.hidden_size;
        feat = top.num_directions * top_out; /* checked by the layer loop above */
        rc = find(&v, "head.w", &t);
        if (rc == 0) rc = find(&v, "head.w.u", &t); /* a low-rank head: its rows are U's */
        if (rc < 0) return rc;
        if (rc == 0 || t.ndim != 2) return LSL_ERR_FORMAT;
        if ((rc = load_matrix(&v, &a, "head.w", (int32_t)t.dims[0], feat, act8, &head)) != LSL_OK) return rc;
        rc = find(&v, "head.b", &t);
        if (rc < 0) return rc;
        if (rc == 1 && (rc = load_vector(&v, &a, "head.b", head.rows > 0 ? head.rows : (int32_t)t.dims[0], &bias)) !=
                           LSL_OK)
            return rc;
        if (model) {
            model->head = head;
            model->head_bias = bias;
        }
    }

    if (need) *need = a.used;
    if (!a.base) return LSL_OK;
    rc = lsl_model_check(model);
    if (rc != LSL_OK) return LSL_ERR_FORMAT;
    if (model_out) *model_out = model;
    return LSL_OK;
}
