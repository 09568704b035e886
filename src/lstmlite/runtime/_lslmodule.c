/*
 * _lslmodule.c -- the CPython binding of the native runtime (lstmlite.runtime._lsl).
 *
 * Deliberately thin and numpy-free at build time: arrays cross through the buffer
 * protocol, the Python side (engine.py) allocates outputs and checks dtypes/shapes
 * with friendly messages, and this file re-checks every size before calling C (a
 * wrong call raises, never crashes).
 *
 *   Model(data: bytes, act: int)            parse + pack a .lsl image
 *   Model.run(inputs, lengths, state, out)  whole sequences (GIL released)
 *   Model.stream(batch) -> Stream           per-stream state + step workspace
 *   Stream.step(x, out)                     one step; no allocation
 *   Stream.reset(), Stream.get_state(buf), Stream.set_state(buf)
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>
#include <string.h>

#include "lsl.h"
#include "lsl_tflite.h"

#define LSL_ALIGN_PY 64
static size_t lsl_round_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

static PyObject *LslError; /* lstmlite.runtime._lsl.Error (a ValueError) */

static int raise_rc(int rc) {
    PyErr_Format(LslError, "lstmlite runtime error %d: %s", rc, lsl_strerror(rc));
    return -1;
}

/* 64-byte aligned block (zeroed when `zero`); *raw keeps the pointer to free. */
static void *aligned_alloc64z(size_t bytes, void **raw, int zero) {
    char *p = zero ? (char *)PyMem_RawCalloc(1, bytes + 64) : (char *)PyMem_RawMalloc(bytes + 64);
    if (!p) return NULL;
    *raw = p;
    return (void *)(((uintptr_t)p + 63) & ~(uintptr_t)63);
}

static void *aligned_alloc64(size_t bytes, void **raw) { return aligned_alloc64z(bytes, raw, 1); }

/* ---- Model ------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    void *raw;
    const lsl_model *model;
    int act;
} ModelObject;

static void Model_dealloc(ModelObject *self) {
    PyMem_RawFree(self->raw);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Model_init(ModelObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"data", "act", NULL};
    Py_buffer view;
    int act = LSL_ACT_FLOAT, rc;
    size_t need = 0;
    void *arena;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "y*|i", kwlist, &view, &act)) return -1;
    rc = lsl_load(view.buf, (size_t)view.len, act, NULL, 0, NULL, &need);
    if (rc != LSL_OK) {
        PyBuffer_Release(&view);
        return raise_rc(rc);
    }
    PyMem_RawFree(self->raw);
    self->raw = NULL;
    self->model = NULL;
    arena = aligned_alloc64(need, &self->raw);
    if (!arena) {
        PyBuffer_Release(&view);
        PyErr_NoMemory();
        return -1;
    }
    rc = lsl_load(view.buf, (size_t)view.len, act, arena, need, &self->model, NULL);
    PyBuffer_Release(&view);
    if (rc != LSL_OK) {
        PyMem_RawFree(self->raw);
        self->raw = NULL;
        self->model = NULL;
        return raise_rc(rc);
    }
    self->act = act & ~(LSL_LOAD_KEEP_SPARSE | LSL_LOAD_H7);
    return 0;
}

static int model_ready(ModelObject *self) {
    if (!self->model) {
        PyErr_SetString(LslError, "model is not initialised");
        return 0;
    }
    return 1;
}

/* Get a C-contiguous buffer of the given item format ('f' float32, 'i' int32). */
static int get_buf(PyObject *obj, Py_buffer *view, char fmt, int writable, const char *what) {
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    const char *f;
    if (PyObject_GetBuffer(obj, view, flags) < 0) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s must be a C-contiguous%s array", what, writable ? " writable" : "");
        return -1;
    }
    f = view->format ? view->format : "B";
    if (*f == '<' || *f == '=' || *f == '@') ++f;
    if (!((fmt == 'f' && strcmp(f, "f") == 0 && view->itemsize == 4) ||
          (fmt == 'i' && (strcmp(f, "i") == 0 || (strcmp(f, "l") == 0 && view->itemsize == 4)) &&
           view->itemsize == 4) ||
          (fmt == 'b' && strcmp(f, "b") == 0 && view->itemsize == 1) ||
          (fmt == 'h' && strcmp(f, "h") == 0 && view->itemsize == 2) ||
          (fmt == 'H' && strcmp(f, "H") == 0 && view->itemsize == 2) ||
          (fmt == 'q' && (strcmp(f, "q") == 0 || strcmp(f, "l") == 0) && view->itemsize == 8))) {
        PyErr_Format(PyExc_TypeError, "%s must be %s", what,
                     fmt == 'f' ? "float32"
                                : (fmt == 'i' ? "int32"
                                              : (fmt == 'b' ? "int8"
                                                            : (fmt == 'h' ? "int16" : (fmt == 'q' ? "int64" : "uint16")))));
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* run(inputs, lengths, state, out[, threads]): shapes (B, T, I) float32 or (B, T) int32
 * tokens; lengths (B,) int32 or None; state float32 with state_floats(B) items or None;
 * out float32 with B * run_out_floats(T) items; threads >= 1 splits the batch. */
static PyObject *Model_run(ModelObject *self, PyObject *args) {
    PyObject *inputs, *lengths_obj, *state_obj, *out_obj;
    Py_buffer in = {0}, len = {0}, st = {0}, out = {0};
    int has_len = 0, has_state = 0, rc = LSL_OK, tokens, threads = 1;
    Py_ssize_t batch, steps;
    size_t need, raw_bytes;
    void *raw = NULL, *work;
    const lsl_model *m;
    if (!model_ready(self)) return NULL;
    m = self->model;
    if (!PyArg_ParseTuple(args, "OOOO|i", &inputs, &lengths_obj, &state_obj, &out_obj, &threads)) return NULL;
    if (threads < 1 || threads > LSL_MAX_THREADS) {
        PyErr_Format(PyExc_ValueError, "threads must be in [1, %d], got %d", LSL_MAX_THREADS, threads);
        return NULL;
    }
    tokens = m->embedding.num > 0;
    if (get_buf(inputs, &in, tokens ? 'i' : 'f', 0, tokens ? "token ids" : "inputs") < 0) return NULL;
    if (in.ndim != (tokens ? 2 : 3) || (!tokens && in.shape[2] != lsl_model_input_size(m))) {
        PyErr_Format(PyExc_ValueError, "inputs must have shape %s", tokens ? "(B, T)" : "(B, T, input_size)");
        goto fail;
    }
    batch = in.shape[0];
    steps = in.shape[1];
    if (batch < 1 || steps < 1 || batch > (1 << 24) || steps > (1 << 28)) {
        PyErr_SetString(PyExc_ValueError, "inputs need at least one sequence of at least one step");
        goto fail;
    }
    if (lengths_obj != Py_None) {
        if (get_buf(lengths_obj, &len, 'i', 0, "lengths") < 0) goto fail;
        has_len = 1;
        if (len.ndim != 1 || len.shape[0] != batch) {
            PyErr_SetString(PyExc_ValueError, "lengths must have shape (B,)");
            goto fail;
        }
    }
    if (state_obj != Py_None) {
        if (get_buf(state_obj, &st, 'f', 1, "state") < 0) goto fail;
        has_state = 1;
        if ((size_t)(st.len / 4) != lsl_model_state_floats(m, (int32_t)batch)) {
            PyErr_SetString(PyExc_ValueError, "state has the wrong size for this batch");
            goto fail;
        }
    }
    if (get_buf(out_obj, &out, 'f', 1, "out") < 0) goto fail;
    if ((size_t)(out.len / 4) != (size_t)batch * lsl_model_run_out_floats(m, (int32_t)steps)) {
        PyErr_SetString(PyExc_ValueError, "out has the wrong size");
        goto fail;
    }
    need = lsl_model_run_parallel_bytes(m, (int32_t)batch, (int32_t)steps, threads);
    if (need == 0) {
        PyErr_SetString(PyExc_ValueError, "batch or sequence too large");
        goto fail;
    }
    raw_bytes = need;
    work = aligned_alloc64z(raw_bytes, &raw, 0); /* the run initialises what it reads */
    if (!work) {
        PyErr_NoMemory();
        goto fail;
    }
    Py_BEGIN_ALLOW_THREADS
    rc = lsl_model_run_parallel(m, threads, (int32_t)batch, (int32_t)steps, tokens ? NULL : (const float *)in.buf,
                       tokens ? (const int32_t *)in.buf : NULL, has_len ? (const int32_t *)len.buf : NULL,
                       (float *)out.buf, has_state ? (float *)st.buf : NULL, work, need);
    Py_END_ALLOW_THREADS
    PyMem_RawFree(raw);
    if (rc != LSL_OK) {
        raise_rc(rc);
        goto fail;
    }
    PyBuffer_Release(&in);
    if (has_len) PyBuffer_Release(&len);
    if (has_state) PyBuffer_Release(&st);
    PyBuffer_Release(&out);
    Py_RETURN_NONE;
fail:
    if (in.obj) PyBuffer_Release(&in);
    if (len.obj) PyBuffer_Release(&len);
    if (st.obj) PyBuffer_Release(&st);
    if (out.obj) PyBuffer_Release(&out);
    return NULL;
}

static PyObject *Model_state_floats(ModelObject *self, PyObject *arg) {
    long batch;
    if (!model_ready(self)) return NULL;
    batch = PyLong_AsLong(arg);
    if (batch == -1 && PyErr_Occurred()) return NULL;
    if (batch < 1 || batch > (1 << 24)) {
        PyErr_SetString(PyExc_ValueError, "batch must be in [1, 2**24]");
        return NULL;
    }
    return PyLong_FromSize_t(lsl_model_state_floats(self->model, (int32_t)batch));
}

static PyObject *Model_run_out_floats(ModelObject *self, PyObject *arg) {
    long steps;
    if (!model_ready(self)) return NULL;
    steps = PyLong_AsLong(arg);
    if (steps == -1 && PyErr_Occurred()) return NULL;
    if (steps < 1 || steps > (1 << 28)) {
        PyErr_SetString(PyExc_ValueError, "steps must be positive");
        return NULL;
    }
    return PyLong_FromSize_t(lsl_model_run_out_floats(self->model, (int32_t)steps));
}

/* The weight form of a matrix as stored (stored = 1: a block-sparse matrix that lsl_load
 * unpacked dense is still "int8-sparse") or as it runs (stored = 0); a low-rank one
 * reports its U factor's form. */
static const char *weights_name(const lsl_matrix *m, int stored) {
    const lsl_matrix *f = m->dtype == LSL_LOWRANK ? &((const lsl_matrix *)m->data)[1] : m;
    if (f->dtype == LSL_F32) return "fp32";
    if (f->dtype == LSL_I8) return stored && lsl_matrix_from_sparse(f) ? "int8-sparse" : "int8";
    return "int8-sparse";
}

/* The bits of the activation codes a matrix multiplies: 7 or 8 (dynamic int8 codes),
 * 16 (LSL_ACT_DYN16), 32 (float activations); a low-rank one reports its V factor's. */
static int act_bits(const lsl_matrix *m) {
    const lsl_matrix *f = m->dtype == LSL_LOWRANK ? &((const lsl_matrix *)m->data)[0] : m;
    if (f->dtype == LSL_F32 || f->act == LSL_ACT_FLOAT) return 32;
    return f->act == LSL_ACT_DYN16 ? 16 : (f->act == LSL_ACT_DYN7 ? 7 : 8);
}

/* The rank of a low-rank matrix, 0 for a full one. */
static int matrix_rank(const lsl_matrix *m) { return m->dtype == LSL_LOWRANK ? (int)m->kpad : 0; }

static PyObject *Model_info(ModelObject *self, PyObject *Py_UNUSED(ignored)) {
    const lsl_model *m;
    PyObject *layers, *d;
    int32_t k;
    if (!model_ready(self)) return NULL;
    m = self->model;
    layers = PyList_New(m->num_layers);
    if (!layers) return NULL;
    for (k = 0; k < m->num_layers; ++k) {
        const lsl_layer *l = &m->layers[k];
        PyObject *item = Py_BuildValue(
            "{s:s,s:i,s:i,s:i,s:i,s:s,s:s,s:s,s:i,s:i,s:i}", "cell",
            l->cell == LSL_LSTM ? "lstm" : (l->cell == LSL_GRU ? "gru" : "fastgrnn"), "input_size",
            l->input_size, "hidden_size", l->hidden_size, "proj_size", l->proj_size, "num_directions",
            l->num_directions, "weights", weights_name(&l->dir[0].w_hh, 1), "runs_ih",
            weights_name(&l->dir[0].w_ih, 0), "runs_hh", weights_name(&l->dir[0].w_hh, 0), "rank_ih", matrix_rank(&l->dir[0].w_ih),
            "rank_hh", matrix_rank(&l->dir[0].w_hh), "h_bits", act_bits(&l->dir[0].w_hh));
        if (!item) {
            Py_DECREF(layers);
            return NULL;
        }
        PyList_SET_ITEM(layers, k, item);
    }
    d = Py_BuildValue("{s:N,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:n}", "layers", layers, "input_size",
                      lsl_model_input_size(m), "feature_size", lsl_model_feature_size(m), "vocab_size",
                      m->embedding.num, "head_mode", m->head_mode, "pooling", m->pooling, "n_out",
                      m->head_mode == LSL_HEAD_NONE ? 0 : m->head.rows, "act", self->act, "step_out",
                      (Py_ssize_t)lsl_model_step_out_floats(m));
    return d;
}

static PyTypeObject StreamType;

typedef struct {
    PyObject_HEAD
    ModelObject *owner; /* keeps the model alive */
    int32_t batch;
    size_t state_floats, work_bytes, in_items, out_items;
    void *raw_state, *raw_work;
    float *state;
    void *work;
} StreamObject;

static PyObject *Model_stream(ModelObject *self, PyObject *arg) {
    long batch;
    StreamObject *s;
    const lsl_model *m;
    if (!model_ready(self)) return NULL;
    m = self->model;
    batch = PyLong_AsLong(arg);
    if (batch == -1 && PyErr_Occurred()) return NULL;
    if (batch < 1 || batch > (1 << 20)) {
        PyErr_SetString(PyExc_ValueError, "batch must be in [1, 2**20]");
        return NULL;
    }
    if (lsl_model_step_bytes(m, (int32_t)batch) == 0) return raise_rc(LSL_ERR_SHAPE), NULL;
    s = PyObject_New(StreamObject, &StreamType);
    if (!s) return NULL;
    s->owner = self;
    Py_INCREF(self);
    s->batch = (int32_t)batch;
    s->state_floats = lsl_model_state_floats(m, (int32_t)batch);
    s->work_bytes = lsl_model_step_bytes(m, (int32_t)batch);
    s->in_items = (size_t)batch * (m->embedding.num > 0 ? 1 : (size_t)lsl_model_input_size(m));
    s->out_items = (size_t)batch * lsl_model_step_out_floats(m);
    s->raw_state = s->raw_work = NULL;
    s->state = (float *)aligned_alloc64(s->state_floats * sizeof(float), &s->raw_state);
    s->work = aligned_alloc64(s->work_bytes, &s->raw_work);
    if (!s->state || !s->work) {
        Py_DECREF(s);
        return PyErr_NoMemory();
    }
    return (PyObject *)s;
}

static PyMethodDef Model_methods[] = {
    {"run", (PyCFunction)Model_run, METH_VARARGS, "run(inputs, lengths, state, out[, threads]): whole sequences, the batch split over threads."},
    {"stream", (PyCFunction)Model_stream, METH_O, "stream(batch) -> Stream: state for `batch` streams."},
    {"state_floats", (PyCFunction)Model_state_floats, METH_O, "floats of state for a batch"},
    {"run_out_floats", (PyCFunction)Model_run_out_floats, METH_O, "output floats per sequence of T steps"},
    {"info", (PyCFunction)Model_info, METH_NOARGS, "dict describing the model"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ModelType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "lstmlite.runtime._lsl.Model",
    .tp_basicsize = sizeof(ModelObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A loaded .lsl model (weights packed for this CPU's kernels).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Model_init,
    .tp_dealloc = (destructor)Model_dealloc,
    .tp_methods = Model_methods,
};

/* ---- Stream ------------------------------------------------------------------------ */

static void Stream_dealloc(StreamObject *self) {
    PyMem_RawFree(self->raw_state);
    PyMem_RawFree(self->raw_work);
    Py_XDECREF(self->owner);
    PyObject_Free(self);
}

/* step(x, out): x float32 (B*I items) or int32 tokens (B items); out float32. The
 * hot path: buffer checks, one C call, no allocation. */
static PyObject *Stream_step(StreamObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Py_buffer in, out;
    const lsl_model *m = self->owner->model;
    int tokens = m->embedding.num > 0, rc;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "step(x, out) takes two arguments");
        return NULL;
    }
    if (get_buf(args[0], &in, tokens ? 'i' : 'f', 0, tokens ? "token ids" : "x") < 0) return NULL;
    if ((size_t)(in.len / 4) != self->in_items) {
        PyBuffer_Release(&in);
        PyErr_Format(PyExc_ValueError, "x must hold %zu values (batch %d)", self->in_items, (int)self->batch);
        return NULL;
    }
    if (get_buf(args[1], &out, 'f', 1, "out") < 0) {
        PyBuffer_Release(&in);
        return NULL;
    }
    if ((size_t)(out.len / 4) != self->out_items) {
        PyBuffer_Release(&in);
        PyBuffer_Release(&out);
        PyErr_SetString(PyExc_ValueError, "out has the wrong size");
        return NULL;
    }
    rc = lsl_model_step(m, self->batch, tokens ? NULL : (const float *)in.buf, tokens ? (const int32_t *)in.buf : NULL,
                        self->state, (float *)out.buf, self->work, self->work_bytes);
    PyBuffer_Release(&in);
    PyBuffer_Release(&out);
    if (rc != LSL_OK) return raise_rc(rc), NULL;
    Py_RETURN_NONE;
}

static PyObject *Stream_reset(StreamObject *self, PyObject *Py_UNUSED(ignored)) {
    memset(self->state, 0, self->state_floats * sizeof(float));
    Py_RETURN_NONE;
}

static PyObject *Stream_get_state(StreamObject *self, PyObject *arg) {
    Py_buffer b;
    if (get_buf(arg, &b, 'f', 1, "state") < 0) return NULL;
    if ((size_t)(b.len / 4) != self->state_floats) {
        PyBuffer_Release(&b);
        PyErr_SetString(PyExc_ValueError, "state buffer has the wrong size");
        return NULL;
    }
    memcpy(b.buf, self->state, self->state_floats * sizeof(float));
    PyBuffer_Release(&b);
    Py_RETURN_NONE;
}

static PyObject *Stream_set_state(StreamObject *self, PyObject *arg) {
    Py_buffer b;
    if (get_buf(arg, &b, 'f', 0, "state") < 0) return NULL;
    if ((size_t)(b.len / 4) != self->state_floats) {
        PyBuffer_Release(&b);
        PyErr_SetString(PyExc_ValueError, "state buffer has the wrong size");
        return NULL;
    }
    memcpy(self->state, b.buf, self->state_floats * sizeof(float));
    PyBuffer_Release(&b);
    Py_RETURN_NONE;
}

static PyObject *Stream_get_batch(StreamObject *self, void *Py_UNUSED(c)) { return PyLong_FromLong(self->batch); }
static PyObject *Stream_get_state_floats(StreamObject *self, void *Py_UNUSED(c)) {
    return PyLong_FromSize_t(self->state_floats);
}

static PyGetSetDef Stream_getset[] = {
    {"batch", (getter)Stream_get_batch, NULL, "streams advanced together", NULL},
    {"state_floats", (getter)Stream_get_state_floats, NULL, "floats of recurrent state", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef Stream_methods[] = {
    {"step", (PyCFunction)(void (*)(void))Stream_step, METH_FASTCALL, "step(x, out): advance one step."},
    {"reset", (PyCFunction)Stream_reset, METH_NOARGS, "zero the state"},
    {"get_state", (PyCFunction)Stream_get_state, METH_O, "copy the state into a float32 buffer"},
    {"set_state", (PyCFunction)Stream_set_state, METH_O, "load the state from a float32 buffer"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject StreamType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "lstmlite.runtime._lsl.Stream",
    .tp_basicsize = sizeof(StreamObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Recurrent state (and step workspace) of one or more streams of a Model.",
    .tp_dealloc = (destructor)Stream_dealloc,
    .tp_methods = Stream_methods,
    .tp_getset = Stream_getset,
};

/* ---- integer-only models ------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    void *raw;       /* arena: directions, weights, parameters (copied) */
    void *raw_work;  /* step workspace (calls hold the GIL, so one per model is safe) */
    void *work;
    size_t work_bytes;
    lsl_int_model model;
    int ready;
} IntModelObject;

static void IntModel_dealloc(IntModelObject *self) {
    PyMem_RawFree(self->raw);
    PyMem_RawFree(self->raw_work);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* IntModel(cell, num_directions, dirs): dirs is a list (layer-major) of tuples
 * (input_size, hidden_size, cell_frac, input_bits, w_ih, w_hh, b_ih, b_hh, m_ih,
 * shift_ih, m_hh, shift_hh); arrays are C-contiguous int8 (weights) / int32 buffers,
 * copied into the model. */
static int IntModel_init(IntModelObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"cell", "num_directions", "dirs", NULL};
    int cell, ndir, rc;
    PyObject *dirs;
    Py_ssize_t n, i;
    size_t total = 0;
    char *arena;
    lsl_int_direction *out;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "iiO!", kwlist, &cell, &ndir, &PyList_Type, &dirs)) return -1;
    n = PyList_GET_SIZE(dirs);
    if (n < 1 || ndir < 1 || n % ndir != 0) {
        PyErr_SetString(PyExc_ValueError, "dirs must hold num_layers * num_directions entries");
        return -1;
    }
    PyMem_RawFree(self->raw);
    PyMem_RawFree(self->raw_work);
    self->raw = self->raw_work = NULL;
    self->ready = 0;
    /* pass 1: sizes */
    total = lsl_round_up(sizeof(lsl_int_direction) * (size_t)n, LSL_ALIGN_PY);
    for (i = 0; i < n; ++i) {
        PyObject *t = PyList_GET_ITEM(dirs, i);
        Py_ssize_t k;
        if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != 12) {
            PyErr_SetString(PyExc_TypeError, "each direction is a 12-tuple");
            return -1;
        }
        for (k = 4; k < 12; ++k) {
            Py_buffer b;
            if (PyObject_GetBuffer(PyTuple_GET_ITEM(t, k), &b, PyBUF_C_CONTIGUOUS) < 0) return -1;
            total += lsl_round_up((size_t)b.len, LSL_ALIGN_PY);
            PyBuffer_Release(&b);
        }
    }
    arena = (char *)aligned_alloc64(total, &self->raw);
    if (!arena) {
        PyErr_NoMemory();
        return -1;
    }
    out = (lsl_int_direction *)arena;
    arena += lsl_round_up(sizeof(lsl_int_direction) * (size_t)n, LSL_ALIGN_PY);
    /* pass 2: copy, checking every array's size against the declared shapes */
    for (i = 0; i < n; ++i) {
        PyObject *t = PyList_GET_ITEM(dirs, i);
        lsl_int_direction *d = &out[i];
        long I = PyLong_AsLong(PyTuple_GET_ITEM(t, 0)), H = PyLong_AsLong(PyTuple_GET_ITEM(t, 1));
        long G = cell == LSL_LSTM ? 4 : 3;
        Py_ssize_t k;
        const void **slots[8];
        size_t want[8];
        if (PyErr_Occurred()) return -1;
        if (I <= 0 || H <= 0 || I > (1 << 24) || H > (1 << 20)) {
            PyErr_SetString(PyExc_ValueError, "bad input or hidden size");
            return -1;
        }
        d->input_size = (int32_t)I;
        d->hidden_size = (int32_t)H;
        d->cell_frac = (int32_t)PyLong_AsLong(PyTuple_GET_ITEM(t, 2));
        d->input_bits = (int32_t)PyLong_AsLong(PyTuple_GET_ITEM(t, 3));
        if (PyErr_Occurred()) return -1;
        slots[0] = (const void **)&d->w_ih; want[0] = (size_t)(G * H * I);
        slots[1] = (const void **)&d->w_hh; want[1] = (size_t)(G * H * H);
        slots[2] = (const void **)&d->b_ih; slots[3] = (const void **)&d->b_hh;
        slots[4] = (const void **)&d->m_ih; slots[5] = (const void **)&d->shift_ih;
        slots[6] = (const void **)&d->m_hh; slots[7] = (const void **)&d->shift_hh;
        for (k = 2; k < 8; ++k) want[k] = (size_t)(G * H) * 4;
        for (k = 0; k < 8; ++k) {
            Py_buffer b;
            if (PyObject_GetBuffer(PyTuple_GET_ITEM(t, 4 + k), &b, PyBUF_C_CONTIGUOUS) < 0) return -1;
            if ((size_t)b.len != want[k]) {
                PyBuffer_Release(&b);
                PyErr_Format(PyExc_ValueError, "direction %zd: array %zd has %zd bytes, expected %zu", i, k,
                             b.len, want[k]);
                return -1;
            }
            memcpy(arena, b.buf, (size_t)b.len);
            *slots[k] = arena;
            arena += lsl_round_up((size_t)b.len, LSL_ALIGN_PY);
            PyBuffer_Release(&b);
        }
    }
    self->model.cell = cell;
    self->model.num_directions = ndir;
    self->model.num_layers = (int32_t)(n / ndir);
    self->model.layout = LSL_INT_ROWS;
    self->model.dirs = out;
    rc = lsl_int_model_check(&self->model);
    if (rc != LSL_OK) return raise_rc(rc);
    self->work_bytes = lsl_int_step_bytes(&self->model, 1);
    self->work = aligned_alloc64(self->work_bytes, &self->raw_work);
    if (!self->work) {
        PyErr_NoMemory();
        return -1;
    }
    self->ready = 1;
    return 0;
}

/* run(x int16 (B, T, I), lengths int32 (B,) or None, state int16 or None, out int16 (B, T, D*H)) */
static PyObject *IntModel_run(IntModelObject *self, PyObject *args) {
    PyObject *x_obj, *len_obj, *st_obj, *out_obj;
    Py_buffer x = {0}, len = {0}, st = {0}, out = {0};
    void *raw = NULL, *work;
    size_t need;
    int rc = LSL_OK, k;
    Py_ssize_t batch, steps, width = 0;
    if (!self->ready) return raise_rc(LSL_ERR_ARG), NULL;
    if (!PyArg_ParseTuple(args, "OOOO", &x_obj, &len_obj, &st_obj, &out_obj)) return NULL;
    if (get_buf(x_obj, &x, 'h', 0, "x") < 0) return NULL;
    if (x.ndim != 3 || x.shape[2] != self->model.dirs[0].input_size || x.shape[0] < 1 || x.shape[1] < 1) {
        PyErr_SetString(PyExc_ValueError, "x must be (B, T, input_size) with B, T >= 1");
        goto fail;
    }
    batch = x.shape[0];
    steps = x.shape[1];
    for (k = 0; k < self->model.num_directions; ++k)
        width += self->model.dirs[(self->model.num_layers - 1) * self->model.num_directions + k].hidden_size;
    if (len_obj != Py_None) {
        if (get_buf(len_obj, &len, 'i', 0, "lengths") < 0) goto fail;
        if (len.ndim != 1 || len.shape[0] != batch) {
            PyErr_SetString(PyExc_ValueError, "lengths must be (B,)");
            goto fail;
        }
    }
    if (st_obj != Py_None) {
        if (get_buf(st_obj, &st, 'h', 1, "state") < 0) goto fail;
        if ((size_t)(st.len / 2) != lsl_int_state_values(&self->model, (int32_t)batch)) {
            PyErr_SetString(PyExc_ValueError, "state has the wrong size");
            goto fail;
        }
    }
    if (get_buf(out_obj, &out, 'h', 1, "out") < 0) goto fail;
    if (out.len / 2 != batch * steps * width) {
        PyErr_SetString(PyExc_ValueError, "out has the wrong size");
        goto fail;
    }
    need = lsl_int_run_bytes(&self->model, (int32_t)batch, (int32_t)steps);
    if (!need) {
        raise_rc(LSL_ERR_SHAPE);
        goto fail;
    }
    work = aligned_alloc64z(need, &raw, 0);
    if (!work) {
        PyErr_NoMemory();
        goto fail;
    }
    Py_BEGIN_ALLOW_THREADS
    rc = lsl_int_run(&self->model, (int32_t)batch, (int32_t)steps, (const int16_t *)x.buf,
                     len.obj ? (const int32_t *)len.buf : NULL, (int16_t *)out.buf, st.obj ? (int16_t *)st.buf : NULL,
                     work, need);
    Py_END_ALLOW_THREADS
    PyMem_RawFree(raw);
    if (rc != LSL_OK) raise_rc(rc);
fail:
    if (x.obj) PyBuffer_Release(&x);
    if (len.obj) PyBuffer_Release(&len);
    if (st.obj) PyBuffer_Release(&st);
    if (out.obj) PyBuffer_Release(&out);
    if (PyErr_Occurred()) return NULL;
    Py_RETURN_NONE;
}

/* step(x int16 (B, I), state int16 (in place), out int16 (B, H)) */
static PyObject *IntModel_step(IntModelObject *self, PyObject *args) {
    PyObject *x_obj, *st_obj, *out_obj;
    Py_buffer x = {0}, st = {0}, out = {0};
    Py_ssize_t batch;
    const int32_t I = self->ready ? self->model.dirs[0].input_size : 0;
    int rc;
    if (!self->ready) return raise_rc(LSL_ERR_ARG), NULL;
    if (!PyArg_ParseTuple(args, "OOO", &x_obj, &st_obj, &out_obj)) return NULL;
    if (get_buf(x_obj, &x, 'h', 0, "x") < 0) return NULL;
    if (x.len / 2 % I != 0 || x.len == 0) {
        PyErr_SetString(PyExc_ValueError, "x must hold B * input_size values");
        goto fail;
    }
    batch = x.len / 2 / I;
    if (get_buf(st_obj, &st, 'h', 1, "state") < 0) goto fail;
    if ((size_t)(st.len / 2) != lsl_int_state_values(&self->model, (int32_t)batch)) {
        PyErr_SetString(PyExc_ValueError, "state has the wrong size for this batch");
        goto fail;
    }
    if (get_buf(out_obj, &out, 'h', 1, "out") < 0) goto fail;
    if (out.len / 2 != batch * self->model.dirs[self->model.num_layers * self->model.num_directions - 1].hidden_size) {
        PyErr_SetString(PyExc_ValueError, "out has the wrong size");
        goto fail;
    }
    rc = lsl_int_step(&self->model, (int32_t)batch, (const int16_t *)x.buf, (int16_t *)st.buf, (int16_t *)out.buf,
                      self->work, self->work_bytes);
    if (rc != LSL_OK) raise_rc(rc);
fail:
    if (x.obj) PyBuffer_Release(&x);
    if (st.obj) PyBuffer_Release(&st);
    if (out.obj) PyBuffer_Release(&out);
    if (PyErr_Occurred()) return NULL;
    Py_RETURN_NONE;
}

static PyObject *IntModel_state_values(IntModelObject *self, PyObject *arg) {
    long batch = PyLong_AsLong(arg);
    if (batch == -1 && PyErr_Occurred()) return NULL;
    if (!self->ready || batch < 1 || batch > (1 << 24)) {
        PyErr_SetString(PyExc_ValueError, "batch must be positive (and the model initialised)");
        return NULL;
    }
    return PyLong_FromSize_t(lsl_int_state_values(&self->model, (int32_t)batch));
}

static PyMethodDef IntModel_methods[] = {
    {"run", (PyCFunction)IntModel_run, METH_VARARGS, "run(x, lengths, state, out): whole int16 sequences"},
    {"step", (PyCFunction)IntModel_step, METH_VARARGS, "step(x, state, out): one step, state in place"},
    {"state_values", (PyCFunction)IntModel_state_values, METH_O, "int16 values of state for a batch"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject IntModelType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "lstmlite.runtime._lsl.IntModel",
    .tp_basicsize = sizeof(IntModelObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "An integer-only LSTM/GRU (bit-exact with lstmlite.reference.integer).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)IntModel_init,
    .tp_dealloc = (destructor)IntModel_dealloc,
    .tp_methods = IntModel_methods,
};

/* ---- module functions ------------------------------------------------------------- */

/* "auto, portable, avx2, ..." : every level's name, for error messages. */
static void all_names(char *buf, size_t cap) {
    int level;
    strncpy(buf, "auto", cap - 1);
    buf[cap - 1] = '\0';
    for (level = 0; level < LSL_ISA_COUNT; ++level) {
        strncat(buf, ", ", cap - strlen(buf) - 1);
        strncat(buf, lsl_isa_name(level), cap - strlen(buf) - 1);
    }
}

/* "portable, avx2, ..." : the levels this CPU runs, for error messages. */
static void supported_names(char *buf, size_t cap) {
    int level;
    buf[0] = '\0';
    for (level = 0; level < LSL_ISA_COUNT; ++level)
        if (lsl_isa_supported(level)) {
            if (buf[0]) strncat(buf, ", ", cap - strlen(buf) - 1);
            strncat(buf, lsl_isa_name(level), cap - strlen(buf) - 1);
        }
}

static PyObject *mod_isa_set(PyObject *Py_UNUSED(mod), PyObject *arg) {
    const char *name = PyUnicode_AsUTF8(arg);
    char names[160], all[160];
    int level;
    if (!name) return NULL;
    level = lsl_isa_parse(name);
    supported_names(names, sizeof(names));
    all_names(all, sizeof(all));
    if (level == LSL_ERR_ISA) {
        PyErr_Format(PyExc_ValueError, "unknown ISA %R; choose one of %s (this CPU supports: %s)", arg, all, names);
        return NULL;
    }
    if (lsl_isa_set(level) != LSL_OK) {
        PyErr_Format(LslError, "ISA %s is not available on this CPU (it supports: %s)", name, names);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *mod_isa_supported(PyObject *Py_UNUSED(mod), PyObject *Py_UNUSED(a)) {
    PyObject *out = PyList_New(0);
    int level;
    if (!out) return NULL;
    for (level = 0; level < LSL_ISA_COUNT; ++level) {
        PyObject *name;
        if (!lsl_isa_supported(level)) continue;
        name = PyUnicode_FromString(lsl_isa_name(level));
        if (!name || PyList_Append(out, name) < 0) {
            Py_XDECREF(name);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(name);
    }
    return out;
}

static PyObject *mod_isa_current(PyObject *Py_UNUSED(mod), PyObject *Py_UNUSED(a)) {
    return PyUnicode_FromString(lsl_isa_name(lsl_isa_current()));
}

static PyObject *mod_isa_best(PyObject *Py_UNUSED(mod), PyObject *Py_UNUSED(a)) {
    return PyUnicode_FromString(lsl_isa_name(lsl_isa_best()));
}

static PyObject *mod_has_vnni(PyObject *Py_UNUSED(mod), PyObject *Py_UNUSED(a)) {
    return PyBool_FromLong(lsl_isa_has_vnni());
}

/* Which fused single-stream LSTM steps the active table has: (dense, sparse). Tests use
 * it to know that B = 1 and B = 2 really run different code. */
static PyObject *mod_fused_steps(PyObject *Py_UNUSED(mod), PyObject *Py_UNUSED(a)) {
    const int f = lsl_isa_fused_steps();
    return Py_BuildValue("(OO)", (f & 1) ? Py_True : Py_False, (f & 2) ? Py_True : Py_False);
}

/* y += x @ W^T for a packed matrix and checked buffers x (M, cols), y (M, rows), with a
 * work buffer of its own; sets a Python exception on failure. */
static void matmul_packed(const lsl_matrix *m, const Py_buffer *x, Py_buffer *y) {
    void *raw_work = NULL;
    const int32_t mrows = (int32_t)x->shape[0];
    const size_t wbytes = lsl_matmul_bytes(m, mrows);
    void *work = aligned_alloc64(wbytes + 64, &raw_work);
    int rc;
    if (!work) {
        PyErr_NoMemory();
        return;
    }
    rc = lsl_matmul(m, mrows, (const float *)x->buf, m->cols, (float *)y->buf, m->rows, work, wbytes);
    if (rc != LSL_OK) raise_rc(rc);
    PyMem_RawFree(raw_work);
}

/* matmul(w, scale, act, x, y): y (M, N) += x (M, K) @ W^T through lsl_matrix_pack and
 * lsl_matmul with the active kernels. A test hook: it lets the tests check every GEMM
 * kernel on many shapes against NumPy. w is float32 (N, K), or int8 with scale (N,). */
static PyObject *mod_matmul(PyObject *Py_UNUSED(mod), PyObject *args) {
    PyObject *w_obj, *scale_obj, *x_obj, *y_obj;
    int act, rc = LSL_OK, is_i8;
    Py_buffer w = {0}, sc = {0}, x = {0}, y = {0};
    void *raw_pack = NULL, *pack;
    lsl_matrix m;
    size_t bytes;
    Py_ssize_t rows, cols, mrows;
    if (!PyArg_ParseTuple(args, "OOiOO", &w_obj, &scale_obj, &act, &x_obj, &y_obj)) return NULL;
    is_i8 = scale_obj != Py_None;
    if (get_buf(w_obj, &w, is_i8 ? 'b' : 'f', 0, "w") < 0) return NULL;
    if (is_i8 && get_buf(scale_obj, &sc, 'f', 0, "scale") < 0) goto done;
    if (get_buf(x_obj, &x, 'f', 0, "x") < 0) goto done;
    if (get_buf(y_obj, &y, 'f', 1, "y") < 0) goto done;
    if (w.ndim != 2 || x.ndim != 2 || y.ndim != 2) {
        PyErr_SetString(PyExc_ValueError, "w, x, y must be 2-D");
        goto done;
    }
    rows = w.shape[0];
    cols = w.shape[1];
    mrows = x.shape[0];
    if (x.shape[1] != cols || y.shape[0] != mrows || y.shape[1] != rows || (is_i8 && sc.len / 4 != rows)) {
        PyErr_SetString(PyExc_ValueError, "shapes do not match");
        goto done;
    }
    bytes = lsl_matrix_packed_bytes((int32_t)rows, (int32_t)cols, is_i8 ? LSL_I8 : LSL_F32, act);
    if (bytes == 0) {
        raise_rc(LSL_ERR_SHAPE);
        goto done;
    }
    pack = aligned_alloc64(bytes, &raw_pack);
    if (!pack) {
        PyErr_NoMemory();
        goto done;
    }
    rc = lsl_matrix_pack(&m, (int32_t)rows, (int32_t)cols, is_i8 ? LSL_I8 : LSL_F32, act, w.buf,
                         is_i8 ? (const float *)sc.buf : NULL, pack, bytes);
    if (rc != LSL_OK) {
        raise_rc(rc);
        goto done;
    }
    matmul_packed(&m, &x, &y);
done:
    PyMem_RawFree(raw_pack);
    if (w.obj) PyBuffer_Release(&w);
    if (sc.obj) PyBuffer_Release(&sc);
    if (x.obj) PyBuffer_Release(&x);
    if (y.obj) PyBuffer_Release(&y);
    if (PyErr_Occurred()) return NULL;
    Py_RETURN_NONE;
}

/* matmul_sparse(rowptr, bcol, values, scale, act, cols, x, y): as matmul for a
 * (1, 4)-block sparse int8 matrix given by its compressed rows (lsl_matrix_pack_sparse):
 * rowptr (N + 1,) int32, bcol (blocks,) uint16, values (blocks * 4,) int8, scale (N,). */
static PyObject *mod_matmul_sparse(PyObject *Py_UNUSED(mod), PyObject *args) {
    PyObject *rp_obj, *bc_obj, *val_obj, *scale_obj, *x_obj, *y_obj;
    int act, cols, rc = LSL_OK;
    Py_buffer rpb = {0}, bcb = {0}, val = {0}, sc = {0}, x = {0}, y = {0};
    void *raw_pack = NULL, *pack;
    lsl_matrix m;
    size_t bytes;
    Py_ssize_t rows, blocks;
    if (!PyArg_ParseTuple(args, "OOOOiiOO", &rp_obj, &bc_obj, &val_obj, &scale_obj, &act, &cols, &x_obj, &y_obj))
        return NULL;
    if (get_buf(rp_obj, &rpb, 'i', 0, "rowptr") < 0) return NULL;
    if (get_buf(bc_obj, &bcb, 'H', 0, "bcol") < 0) goto done;
    if (get_buf(val_obj, &val, 'b', 0, "values") < 0) goto done;
    if (get_buf(scale_obj, &sc, 'f', 0, "scale") < 0) goto done;
    if (get_buf(x_obj, &x, 'f', 0, "x") < 0) goto done;
    if (get_buf(y_obj, &y, 'f', 1, "y") < 0) goto done;
    rows = rpb.len / 4 - 1;
    blocks = rows >= 0 ? ((const int32_t *)rpb.buf)[rows] : -1;
    if (rows < 1 || x.ndim != 2 || y.ndim != 2 || x.shape[1] != cols || y.shape[0] != x.shape[0] ||
        y.shape[1] != rows || sc.len / 4 != rows || blocks < 0 || bcb.len / 2 < blocks || val.len != 4 * blocks) {
        PyErr_SetString(PyExc_ValueError, "shapes do not match");
        goto done;
    }
    bytes = lsl_matrix_sparse_bytes((int32_t)rows, cols, act, (const int32_t *)rpb.buf, (const uint16_t *)bcb.buf,
                                    (const int8_t *)val.buf);
    if (bytes == 0) {
        raise_rc(LSL_ERR_ARG);
        goto done;
    }
    pack = aligned_alloc64(bytes, &raw_pack);
    if (!pack) {
        PyErr_NoMemory();
        goto done;
    }
    rc = lsl_matrix_pack_sparse(&m, (int32_t)rows, cols, act, (const int32_t *)rpb.buf, (const uint16_t *)bcb.buf,
                                (const int8_t *)val.buf, (const float *)sc.buf, pack, bytes);
    if (rc != LSL_OK) {
        raise_rc(rc);
        goto done;
    }
    matmul_packed(&m, &x, &y);
done:
    PyMem_RawFree(raw_pack);
    if (rpb.obj) PyBuffer_Release(&rpb);
    if (bcb.obj) PyBuffer_Release(&bcb);
    if (val.obj) PyBuffer_Release(&val);
    if (sc.obj) PyBuffer_Release(&sc);
    if (x.obj) PyBuffer_Release(&x);
    if (y.obj) PyBuffer_Release(&y);
    if (PyErr_Occurred()) return NULL;
    Py_RETURN_NONE;
}

static PyObject *mod_peak_macs(PyObject *Py_UNUSED(mod), PyObject *args) {
    int kind, trials = 5;
    double r;
    if (!PyArg_ParseTuple(args, "i|i", &kind, &trials)) return NULL;
    Py_BEGIN_ALLOW_THREADS
    r = lsl_probe_peak_macs(kind, trials);
    Py_END_ALLOW_THREADS
    return PyFloat_FromDouble(r);
}

/* ---- TFLite-compatible integer LSTM (lsl_tflite.c) ------------------------------- */

/* tflite_run(ints, weights, bias, gate_q, x, out, hidden, cell, batch, steps, time_major)
 *   ints: (I, H, bits, z_x, z_h, p, m_fc, s_fc, m_ic, s_ic, m_o, s_o, cell_clip, single, kernel, z_hid)
 *   weights int8: per gate (input, forget, cell, output) W_x (H*I) then W_h (H*H)
 *   bias int64 (4*H); gate_q int32 (16): per gate m_x, s_x, m_h, s_h
 *   x, out, hidden: int8 (bits 8) or int16 (bits 16); cell int16; hidden/cell in place */
static PyObject *mod_tflite_run(PyObject *self, PyObject *args) {
    PyObject *wo, *bo, *qo, *xo, *oo, *ho, *co;
    Py_buffer w = {0}, b = {0}, q = {0}, x = {0}, out = {0}, h = {0}, c = {0};
    lsl_tflite_params p;
    int batch, steps, time_major, single, rc = LSL_TFLITE_OK, g;
    char act;
    int16_t *scratch = NULL;
    Py_ssize_t I, H, per_gate;
    (void)self;
    memset(&p, 0, sizeof p);
    if (!PyArg_ParseTuple(args, "(iiiiiiiiiiiiiiii)OOOOOOOiii", &p.input_size, &p.hidden_size, &p.activation_bits,
                          &p.input_zero_point, &p.output_zero_point, &p.cell_scale_power, &p.forget_cell_multiplier,
                          &p.forget_cell_shift, &p.input_cell_multiplier, &p.input_cell_shift, &p.output_multiplier,
                          &p.output_shift, &p.cell_clip, &single, &p.kernel, &p.hidden_zero_point, &wo, &bo, &qo, &xo, &oo, &ho, &co, &batch, &steps,
                          &time_major))
        return NULL;
    p.single_rounding = single;
    if (p.input_size < 1 || p.hidden_size < 1 || batch < 0 || steps < 0 ||
        (p.activation_bits != 8 && p.activation_bits != 16)) {
        PyErr_SetString(PyExc_ValueError, "tflite_run: bad sizes");
        return NULL;
    }
    I = p.input_size;
    H = p.hidden_size;
    per_gate = H * I + H * H;
    act = p.activation_bits == 8 ? 'b' : 'h';
    if (get_buf(wo, &w, 'b', 0, "weights") < 0 || get_buf(bo, &b, 'q', 0, "bias") < 0 ||
        get_buf(qo, &q, 'i', 0, "gate_q") < 0 || get_buf(xo, &x, act, 0, "x") < 0 ||
        get_buf(oo, &out, act, 1, "out") < 0 || get_buf(ho, &h, act, 1, "hidden") < 0 ||
        get_buf(co, &c, 'h', 1, "cell") < 0)
        goto done;
    if (w.len != 4 * per_gate || b.len / 8 != 4 * H || q.len / 4 != 16 ||
        x.len / x.itemsize != (Py_ssize_t)batch * steps * I || out.len / out.itemsize != (Py_ssize_t)batch * steps * H ||
        h.len / h.itemsize != (Py_ssize_t)batch * H || c.len / 2 != (Py_ssize_t)batch * H) {
        PyErr_SetString(PyExc_ValueError, "tflite_run: a buffer has the wrong size");
        goto done;
    }
    for (g = 0; g < 4; g++) {
        const int32_t *gq = (const int32_t *)q.buf + 4 * g;
        p.gates[g].input_weights = (const int8_t *)w.buf + g * per_gate;
        p.gates[g].hidden_weights = (const int8_t *)w.buf + g * per_gate + H * I;
        p.gates[g].bias64 = (const int64_t *)b.buf + g * H;
        p.gates[g].input_multiplier = gq[0];
        p.gates[g].input_shift = gq[1];
        p.gates[g].hidden_multiplier = gq[2];
        p.gates[g].hidden_shift = gq[3];
    }
    scratch = (int16_t *)PyMem_RawMalloc(LSL_TFLITE_SCRATCH_VALUES(H) * sizeof(int16_t));
    if (!scratch) {
        PyErr_NoMemory();
        goto done;
    }
    /* the model's worst-case accumulators first (the reference refuses such parameters
     * when they are built): one pass over the weights, then the run */
    rc = lsl_tflite_check_bounds(&p);
    if (rc == LSL_TFLITE_EOVERFLOW) {
        PyErr_SetString(PyExc_OverflowError, "an accumulator could overflow for some input in range (TFLite would "
                                             "wrap): see docs/tflite-compat.md, accumulator bounds");
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    rc = lsl_tflite_run(&p, batch, steps, time_major, x.buf, out.buf, h.buf, (int16_t *)c.buf, scratch);
    Py_END_ALLOW_THREADS
    if (rc == LSL_TFLITE_EOVERFLOW)
        PyErr_SetString(PyExc_OverflowError, "an accumulator overflows (TFLite would wrap)");
    else if (rc != LSL_TFLITE_OK)
        PyErr_Format(PyExc_ValueError, "lsl_tflite_run: invalid parameters (error %d)", rc);
done:
    PyMem_RawFree(scratch);
    if (w.obj) PyBuffer_Release(&w);
    if (b.obj) PyBuffer_Release(&b);
    if (q.obj) PyBuffer_Release(&q);
    if (x.obj) PyBuffer_Release(&x);
    if (out.obj) PyBuffer_Release(&out);
    if (h.obj) PyBuffer_Release(&h);
    if (c.obj) PyBuffer_Release(&c);
    if (PyErr_Occurred()) return NULL;
    Py_RETURN_NONE;
}

/* tflite_activation(x int16 buffer, out int16 buffer, kind, arg): kind 0 sigmoid (LUT),
 * 1 tanh (LUT, arg = left shift), 2 / 3 the LITE kernel's gemmlowp logistic / tanh (arg =
 * integer bits) */
static PyObject *mod_tflite_activation(PyObject *self, PyObject *args) {
    PyObject *xo, *oo;
    Py_buffer x = {0}, out = {0};
    int kind, left_shift;
    Py_ssize_t k, n;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOii", &xo, &oo, &kind, &left_shift)) return NULL;
    if (kind < 0 || kind > 3 || left_shift < -19 || left_shift > 15 || (kind >= 2 && (left_shift < 0 || left_shift > 7))) {
        PyErr_SetString(PyExc_ValueError, "bad kind or shift");
        return NULL;
    }
    if (get_buf(xo, &x, 'h', 0, "x") < 0 || get_buf(oo, &out, 'h', 1, "out") < 0) goto done;
    if (x.len != out.len) {
        PyErr_SetString(PyExc_ValueError, "x and out differ in size");
        goto done;
    }
    n = x.len / 2;
    for (k = 0; k < n; k++) {
        int16_t v = ((const int16_t *)x.buf)[k];
        ((int16_t *)out.buf)[k] = kind == 0   ? lsl_tflite_sigmoid(v)
                                  : kind == 1 ? lsl_tflite_tanh(v, left_shift)
                                  : kind == 2 ? lsl_tflite_lite_logistic(v, left_shift)
                                              : lsl_tflite_lite_tanh(v, left_shift);
    }
done:
    if (x.obj) PyBuffer_Release(&x);
    if (out.obj) PyBuffer_Release(&out);
    if (PyErr_Occurred()) return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"peak_macs", mod_peak_macs, METH_VARARGS, "peak_macs(kind, trials=5): measured MAC/s (0 fp32 FMA, 1 int8: VNNI, else AVX2 vpmaddubsw)."},
    {"matmul", mod_matmul, METH_VARARGS, "matmul(w, scale, act, x, y): y += x @ W^T (test hook)."},
    {"matmul_sparse", mod_matmul_sparse, METH_VARARGS,
     "matmul_sparse(rowptr, bcol, values, scale, act, cols, x, y): y += x @ W^T, W block-sparse (test hook)."},
    {"isa_set", mod_isa_set, METH_O,
     "isa_set(name): force 'portable', 'avx2', 'avx2-vnni', 'avx512', 'avx512-vnni', 'neon', "
     "'neon-dotprod' or 'auto'."},
    {"isa_supported", mod_isa_supported, METH_NOARGS, "names of the kernel tables this CPU runs"},
    {"isa_current", mod_isa_current, METH_NOARGS, "name of the kernels in use"},
    {"isa_best", mod_isa_best, METH_NOARGS, "best kernels this CPU supports"},
    {"has_vnni", mod_has_vnni, METH_NOARGS, "whether AVX-512 VNNI is present"},
    {"fused_steps", mod_fused_steps, METH_NOARGS, "(dense, sparse): the active table's fused LSTM steps"},
    {"tflite_run", mod_tflite_run, METH_VARARGS, "TFLite-compatible integer LSTM (lsl_tflite_run); see tflite.py"},
    {"tflite_activation", mod_tflite_activation, METH_VARARGS,
     "tflite_activation(x, out, kind, left_shift): TFLite's int16 sigmoid (0) / tanh (1) (test hook)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef lslmodule = {
    PyModuleDef_HEAD_INIT, "_lsl", "lstmlite native runtime (C99 core + SIMD kernels).", -1, module_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__lsl(void) {
    PyObject *m;
    if (PyType_Ready(&ModelType) < 0 || PyType_Ready(&StreamType) < 0 || PyType_Ready(&IntModelType) < 0)
        return NULL;
    m = PyModule_Create(&lslmodule);
    if (!m) return NULL;
    LslError = PyErr_NewExceptionWithDoc(
        "lstmlite.runtime._lsl.Error",
        "An error the native runtime's C code reports (a bad input, file or state), with its message; a ValueError.",
        PyExc_ValueError, NULL);
    if (!LslError) goto fail;
    Py_INCREF(&ModelType);
    Py_INCREF(&StreamType);
    Py_INCREF(&IntModelType);
    if (PyModule_AddObject(m, "Error", LslError) < 0 || PyModule_AddObject(m, "Model", (PyObject *)&ModelType) < 0 ||
        PyModule_AddObject(m, "Stream", (PyObject *)&StreamType) < 0 ||
        PyModule_AddObject(m, "IntModel", (PyObject *)&IntModelType) < 0)
        goto fail;
    if (PyModule_AddIntConstant(m, "ACT_FLOAT", LSL_ACT_FLOAT) < 0 ||
        PyModule_AddIntConstant(m, "ACT_DYN8", LSL_ACT_DYN8) < 0 ||
        PyModule_AddIntConstant(m, "ACT_DYN16", LSL_ACT_DYN16) < 0 ||
        PyModule_AddIntConstant(m, "ACT_DYN7", LSL_ACT_DYN7) < 0 ||
        PyModule_AddIntConstant(m, "LOAD_H7", LSL_LOAD_H7) < 0 ||
        PyModule_AddIntConstant(m, "LOAD_KEEP_SPARSE", LSL_LOAD_KEEP_SPARSE) < 0 ||
        PyModule_AddIntConstant(m, "FILE_VERSION", LSL_FILE_VERSION) < 0)
        goto fail;
    {
        /* An unknown or unsupported LSTMLITE_ISA is an error, not a silent fallback; the
         * message waits in ENV_ERROR (None when fine) and engine.py raises it on first
         * use, so that importing the package (the CLI's parser does) still works. */
        PyObject *msg = Py_None;
        Py_INCREF(msg);
        if (lsl_isa_from_env() != LSL_OK) {
            const char *v = getenv("LSTMLITE_ISA");
            char names[160], all[160];
            supported_names(names, sizeof(names));
            all_names(all, sizeof(all));
            Py_DECREF(msg);
            if (lsl_isa_parse(v) == LSL_ERR_ISA)
                msg = PyUnicode_FromFormat("LSTMLITE_ISA=%s is unknown; use one of %s (this CPU supports: %s)", v,
                                           all, names);
            else
                msg = PyUnicode_FromFormat("LSTMLITE_ISA=%s is not available on this CPU (it supports: %s)", v,
                                           names);
            if (!msg) goto fail;
        }
        if (PyModule_AddObject(m, "ENV_ERROR", msg) < 0) {
            Py_DECREF(msg);
            goto fail;
        }
    }
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
