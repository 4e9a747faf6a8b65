/* The hot path of log_metric, in C.
 *
 * In a training loop a log call runs with cold caches: each training step
 * evicts the interpreter's and the struct module's code and data, and the
 * Python hot path (a frame, ~40 bytecodes, struct.pack_into into the mapped
 * journal) cost ~2 us per call there, against ~0.5 us in a tight loop. This
 * module does the common case in one compact C function: look the series up,
 * take a float (or a CPU tensor's item()), claim a slot and write the record
 * into the journal's mapping, commit word last. Every other case (a new
 * series, a sampler, a step or value of another type, source=, timestamp=,
 * a full segment, a run that is not recording) goes to the Python
 * implementation, unchanged, so both paths record the same points.
 *
 * Cursor: one segment's slot counter and its mapped bytes. It is the counter
 *   of Journal.current, so Python and C claim slots from the same count.
 * HotPath: a callable standing in for MetricRecorder.log_metric.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <math.h>
#include <errno.h>

#define SLOT 32
#define VOID_SID 0xFFFFFFFFu

static PyObject *s_context, *s_step, *s_is_cpu, *s_is_sparse, *s_item;

/* ------------------------------------------------------------------ Cursor */

typedef struct {
    PyObject_HEAD
    Py_buffer view;     /* the segment's bytes; view.obj is NULL once released */
    Py_ssize_t next;    /* the next slot to claim */
    Py_ssize_t limit;   /* slots in the segment */
} Cursor;

static int
Cursor_init(Cursor *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"mapping", "first", "limit", NULL};
    PyObject *mapping;
    Py_ssize_t first, limit;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "Onn", kwlist, &mapping, &first, &limit))
        return -1;
    if (self->view.obj != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "a Cursor is initialised once");
        return -1;
    }
    if (PyObject_GetBuffer(mapping, &self->view, PyBUF_WRITABLE) < 0)
        return -1;
    if (first < 0 || limit < first || limit > self->view.len / SLOT) {
        PyBuffer_Release(&self->view);
        PyErr_SetString(PyExc_ValueError, "the slots do not fit in the mapping");
        return -1;
    }
    self->next = first;
    self->limit = limit;
    return 0;
}

static void
Cursor_dealloc(Cursor *self)
{
    if (self->view.obj != NULL)
        PyBuffer_Release(&self->view);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Cursor_iternext(Cursor *self)
{
    /* A released cursor answers "full", so a late Python writer goes to Journal.append. */
    if (self->view.obj == NULL)
        return PyLong_FromSsize_t(self->limit);
    return PyLong_FromSsize_t(self->next++);
}

static PyObject *
Cursor_release(Cursor *self, PyObject *Py_UNUSED(ignored))
{
    if (self->view.obj != NULL)
        PyBuffer_Release(&self->view);
    Py_RETURN_NONE;
}

static PyObject *
Cursor_get_next(Cursor *self, void *closure)
{
    return PyLong_FromSsize_t(self->next);
}

static PyMethodDef Cursor_methods[] = {
    {"release", (PyCFunction)Cursor_release, METH_NOARGS,
     "Let go of the mapping (before it is closed); later claims answer 'full'."},
    {NULL}
};

static PyGetSetDef Cursor_getset[] = {
    {"next", (getter)Cursor_get_next, NULL, "the next slot to claim", NULL},
    {NULL}
};

static PyTypeObject CursorType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "prov4ml.metrics._hot.Cursor",
    .tp_doc = PyDoc_STR("Cursor(mapping, first, limit): the slot counter of one journal segment."),
    .tp_basicsize = sizeof(Cursor),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Cursor_init,
    .tp_dealloc = (destructor)Cursor_dealloc,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)Cursor_iternext,
    .tp_methods = Cursor_methods,
    .tp_getset = Cursor_getset,
};

/* ----------------------------------------------------------------- HotPath */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *by_context;      /* the recorder's dict: context -> {key: MetricSeries} */
    PyObject *slow;            /* the Python log_metric */
    PyObject *on_zero;         /* called when the countdown reaches zero */
    PyObject *series_type;     /* MetricSeries */
    PyObject *tensor_type;     /* torch.Tensor, or None until torch is imported */
    PyObject *signature;       /* for inspect.signature */
    Cursor *cursor;            /* NULL: every call takes the Python path */
    Py_ssize_t off_n, off_sid, off_sampler;  /* the series' slot offsets */
    long long countdown;
    int recording;
} HotPath;

#define SERIES_SLOT(s, off) (*(PyObject **)((char *)(s) + (off)))

static Py_ssize_t
slot_offset(PyObject *type, const char *name)
{
    PyObject *descr = PyObject_GetAttrString(type, name);
    if (descr == NULL)
        return -1;
    Py_ssize_t off = -1;
    if (Py_IS_TYPE(descr, &PyMemberDescr_Type)) {
        PyMemberDef *m = ((PyMemberDescrObject *)descr)->d_member;
        if (m->type == T_OBJECT_EX)
            off = m->offset;
    }
    Py_DECREF(descr);
    if (off < 0)
        PyErr_Format(PyExc_TypeError, "%s must be a __slots__ attribute", name);
    return off;
}

static int
HotPath_init(HotPath *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"by_context", "slow", "on_zero", "series_type", "countdown", NULL};
    PyObject *by_context, *slow, *on_zero, *series_type;
    long long countdown;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!OOO!L", kwlist, &PyDict_Type, &by_context, &slow,
                                     &on_zero, &PyType_Type, &series_type, &countdown))
        return -1;
    /* Into locals first: a failed (re-)__init__ must not leave offsets of another type behind. */
    Py_ssize_t off_n, off_sid, off_sampler;
    if ((off_n = slot_offset(series_type, "n")) < 0 || (off_sid = slot_offset(series_type, "sid")) < 0 ||
        (off_sampler = slot_offset(series_type, "sampler")) < 0)
        return -1;
    self->off_n = off_n;
    self->off_sid = off_sid;
    self->off_sampler = off_sampler;
    Py_INCREF(by_context); Py_XSETREF(self->by_context, by_context);
    Py_INCREF(slow); Py_XSETREF(self->slow, slow);
    Py_INCREF(on_zero); Py_XSETREF(self->on_zero, on_zero);
    Py_INCREF(series_type); Py_XSETREF(self->series_type, series_type);
    Py_INCREF(Py_None); Py_XSETREF(self->tensor_type, Py_None);
    self->countdown = countdown;
    self->recording = 1;
    return 0;
}

static int
HotPath_traverse(HotPath *self, visitproc visit, void *arg)
{
    Py_VISIT(self->by_context);
    Py_VISIT(self->slow);
    Py_VISIT(self->on_zero);
    Py_VISIT(self->series_type);
    Py_VISIT(self->tensor_type);
    Py_VISIT(self->signature);
    return 0;
}

static int
HotPath_clear(HotPath *self)
{
    Py_CLEAR(self->by_context);
    Py_CLEAR(self->slow);
    Py_CLEAR(self->on_zero);
    Py_CLEAR(self->series_type);
    Py_CLEAR(self->tensor_type);
    Py_CLEAR(self->signature);
    Py_CLEAR(self->cursor);
    return 0;
}

static void
HotPath_dealloc(HotPath *self)
{
    PyObject_GC_UnTrack(self);
    HotPath_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* A str (or a str subclass that keeps str's hash and comparison): looking it up runs no Python code. */
static inline int
plain_str(PyObject *o)
{
    PyTypeObject *t = Py_TYPE(o);
    return PyUnicode_CheckExact(o) || (PyUnicode_Check(o) && t->tp_hash == PyUnicode_Type.tp_hash &&
                                      t->tp_richcompare == PyUnicode_Type.tp_richcompare);
}

static inline int
same_name(PyObject *a, PyObject *b)
{
    return a == b || (PyUnicode_Check(a) && PyUnicode_Compare(a, b) == 0);
}

/* A CPU tensor's one number: 1 done, 0 not this path (no error set). */
static int
tensor_value(PyObject *value, double *out)
{
    PyObject *flag = PyObject_GetAttr(value, s_is_cpu);
    if (flag == NULL) { PyErr_Clear(); return 0; }
    int cpu = flag == Py_True;
    Py_DECREF(flag);
    if (!cpu)
        return 0;  /* an accelerator tensor waits, un-synchronised, on the Python path */
    flag = PyObject_GetAttr(value, s_is_sparse);
    if (flag == NULL) { PyErr_Clear(); return 0; }
    int sparse = flag != Py_False;
    Py_DECREF(flag);
    if (sparse)
        return 0;
    PyObject *number = PyObject_CallMethodNoArgs(value, s_item);
    if (number == NULL) { PyErr_Clear(); return 0; }
    double v;
    if (PyFloat_CheckExact(number))
        v = PyFloat_AS_DOUBLE(number);
    else if (PyLong_Check(number))
        v = PyLong_AsDouble(number);  /* an integer or bool tensor, as float(item()) */
    else
        v = -1.0, PyErr_SetString(PyExc_TypeError, "not a number");
    Py_DECREF(number);
    if (v == -1.0 && PyErr_Occurred()) { PyErr_Clear(); return 0; }
    *out = v;
    return 1;
}

static inline void
write_record(char *p, long long step, double value, double t, uint32_t sid, uint32_t commit)
{
    memcpy(p, &step, 8);
    memcpy(p + 8, &value, 8);
    memcpy(p + 16, &t, 8);
    memcpy(p + 24, &sid, 4);
    __atomic_store_n((uint32_t *)(p + 28), commit, __ATOMIC_RELEASE);  /* the commit word last */
}

static PyObject *
HotPath_vectorcall(PyObject *op, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    HotPath *self = (HotPath *)op;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *context = Py_None, *step_arg = Py_None, *value = NULL, *held = NULL;
    if (self->slow == NULL) {  /* made by HotPath.__new__ without a (successful) __init__ */
        PyErr_SetString(PyExc_TypeError, "this HotPath was not initialised");
        return NULL;
    }
    if (!self->recording || self->cursor == NULL || nargs < 2 || nargs > 4)
        goto slow;
    if (nargs > 2)
        context = args[2];
    if (nargs > 3)
        step_arg = args[3];
    if (kwnames != NULL) {
        Py_ssize_t nk = PyTuple_GET_SIZE(kwnames);
        for (Py_ssize_t k = 0; k < nk; k++) {
            PyObject *name = PyTuple_GET_ITEM(kwnames, k);
            if (nargs < 3 && same_name(name, s_context))
                context = args[nargs + k];
            else if (nargs < 4 && same_name(name, s_step))
                step_arg = args[nargs + k];
            else
                goto slow;  /* source=, timestamp=, or a mistake the Python path explains */
        }
    }
    /* Only a float or a torch.Tensor value and a None or int step stay here: check that before the
     * lookups, so that a call made by the Python path runs a key's __hash__ once, as there. A key
     * whose hash or comparison is Python code goes there at once, for the same reason (a new series,
     * a sampler's series would run it twice). */
    if ((!PyFloat_CheckExact(args[1]) && (PyObject *)Py_TYPE(args[1]) != self->tensor_type) ||
        (step_arg != Py_None && !PyLong_CheckExact(step_arg)) || !plain_str(args[0]))
        goto slow;
    /* Borrowed: a str key's hash is cached, and nothing below runs Python code before the
     * series is held (a custom key's __hash__ may, but it runs inside the lookups). */
    PyObject *by_key = PyDict_GetItemWithError(self->by_context, context);
    if (by_key == NULL || !PyDict_CheckExact(by_key)) {
        PyErr_Clear();
        goto slow;
    }
    PyObject *series = PyDict_GetItemWithError(by_key, args[0]);
    if (series == NULL || (PyObject *)Py_TYPE(series) != self->series_type) {
        PyErr_Clear();
        goto slow;
    }
    /* A key's or context's __hash__/__eq__ may have run any Python code in the lookups, end_run included. */
    if (!self->recording || self->cursor == NULL)
        goto slow;
    PyObject *n_obj = SERIES_SLOT(series, self->off_n);
    PyObject *sid_obj = SERIES_SLOT(series, self->off_sid);
    if (SERIES_SLOT(series, self->off_sampler) != Py_None || n_obj == NULL || sid_obj == NULL ||
        !PyLong_CheckExact(n_obj) || !PyLong_CheckExact(sid_obj))
        goto slow;
    int overflow = 0;
    long long step;
    if (step_arg == Py_None)
        step = PyLong_AsLongLongAndOverflow(n_obj, &overflow);
    else if (PyLong_CheckExact(step_arg))
        step = PyLong_AsLongLongAndOverflow(step_arg, &overflow);
    else
        goto slow;
    if (overflow || (step == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        goto slow;
    }
    long long n = PyLong_AsLongLong(n_obj);
    unsigned long sid = PyLong_AsUnsignedLong(sid_obj);
    if (PyErr_Occurred() || sid >= VOID_SID) {
        PyErr_Clear();
        goto slow;
    }
    value = args[1];
    double v = 0.0;
    if (PyFloat_CheckExact(value)) {
        v = PyFloat_AS_DOUBLE(value);
    }
    else if ((PyObject *)Py_TYPE(value) == self->tensor_type) {
        /* item() may run Python code (a TorchFunctionMode, another thread while it waits) that logs to
         * this very series: hold the series until its count is stored, and count on from where the
         * count is after item(), as the Python path does (the step was taken before, as there).
         * Going to the Python path here would call item() a second time. */
        held = Py_NewRef(series);
        int ok = tensor_value(value, &v);
        if (!ok || !self->recording || self->cursor == NULL)
            goto slow_held;  /* not a number (the Python path explains), or the run ended meanwhile */
        n_obj = SERIES_SLOT(series, self->off_n);
        if (n_obj == NULL || !PyLong_CheckExact(n_obj) || SERIES_SLOT(series, self->off_sampler) != Py_None)
            goto slow_held;
        n = PyLong_AsLongLong(n_obj);
        if (n == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            goto slow_held;
        }
    }
    else {
        goto slow;
    }
    Cursor *cursor = self->cursor;
    Py_ssize_t i = cursor->next;
    if (i >= cursor->limit || cursor->view.obj == NULL) {
        if (held == NULL)
            goto slow;  /* Journal.append rolls to the next segment */
        /* A tensor already converted: hand the Python path its number and step, not the tensor,
         * so that item() is not called twice. */
        Py_DECREF(held);
        PyObject *number = PyFloat_FromDouble(v);
        PyObject *step_obj = number ? PyLong_FromLongLong(step) : NULL;
        PyObject *r = NULL;
        if (step_obj != NULL) {
            PyObject *call_args[4] = {args[0], number, context, step_obj};
            r = PyObject_Vectorcall(self->slow, call_args, 4, NULL);
        }
        Py_XDECREF(number);
        Py_XDECREF(step_obj);
        return r;
    }
    PyObject *n_next = PyLong_FromLongLong(n + 1);
    if (n_next == NULL) {
        Py_XDECREF(held);
        return NULL;
    }
    cursor->next = i + 1;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double t = (double)((long long)ts.tv_sec * 1000000000LL + ts.tv_nsec) / 1e9;  /* as time.time() */
    write_record((char *)cursor->view.buf + i * SLOT, step, v, t, (uint32_t)sid, (uint32_t)(i + 1));
    PyObject *old = SERIES_SLOT(series, self->off_n);
    SERIES_SLOT(series, self->off_n) = n_next;
    Py_XDECREF(old);
    Py_XDECREF(held);
    if (--self->countdown <= 0) {
        PyObject *r = PyObject_CallNoArgs(self->on_zero);
        if (r == NULL)
            return NULL;
        Py_DECREF(r);
    }
    Py_RETURN_NONE;
slow_held:
    Py_XDECREF(held);
slow:
    return PyObject_Vectorcall(self->slow, args, nargsf, kwnames);
}

static PyObject *
HotPath_use(HotPath *self, PyObject *cursor)
{
    if (cursor != Py_None && !Py_IS_TYPE(cursor, &CursorType)) {
        PyErr_SetString(PyExc_TypeError, "use() takes a Cursor or None");
        return NULL;
    }
    Py_XSETREF(self->cursor, cursor == Py_None ? NULL : (Cursor *)Py_NewRef(cursor));
    Py_RETURN_NONE;
}

static PyObject *
HotPath_tick(HotPath *self, PyObject *Py_UNUSED(ignored))
{
    if (self->on_zero == NULL) {
        PyErr_SetString(PyExc_TypeError, "this HotPath was not initialised");
        return NULL;
    }
    if (--self->countdown <= 0)
        return PyObject_CallNoArgs(self->on_zero);
    Py_RETURN_NONE;
}

static PyObject *
HotPath_get_cursor(HotPath *self, void *closure)
{
    return self->cursor ? Py_NewRef((PyObject *)self->cursor) : Py_NewRef(Py_None);
}

static PyObject *
HotPath_get_recording(HotPath *self, void *closure)
{
    return PyBool_FromLong(self->recording);
}

static int
HotPath_set_recording(HotPath *self, PyObject *value, void *closure)
{
    int flag = value ? PyObject_IsTrue(value) : 0;
    if (flag < 0)
        return -1;
    self->recording = flag;
    return 0;
}

static PyObject *
HotPath_get_tensor_type(HotPath *self, void *closure)
{
    return Py_NewRef(self->tensor_type);
}

static int
HotPath_set_tensor_type(HotPath *self, PyObject *value, void *closure)
{
    if (value == NULL || (value != Py_None && !PyType_Check(value))) {
        PyErr_SetString(PyExc_TypeError, "tensor_type is a type or None");
        return -1;
    }
    Py_INCREF(value);
    Py_XSETREF(self->tensor_type, value);
    return 0;
}

static PyObject *
HotPath_get_signature(HotPath *self, void *closure)
{
    return Py_NewRef(self->signature ? self->signature : Py_None);
}

static int
HotPath_set_signature(HotPath *self, PyObject *value, void *closure)
{
    Py_XINCREF(value);
    Py_XSETREF(self->signature, value);
    return 0;
}

static PyMethodDef HotPath_methods[] = {
    {"use", (PyCFunction)HotPath_use, METH_O, "Claim slots from this Cursor from now on (None: none)."},
    {"tick", (PyCFunction)HotPath_tick, METH_NOARGS,
     "Count a recording call the C path did not make; at zero call on_zero."},
    {NULL}
};

static PyMemberDef HotPath_members[] = {
    {"countdown", T_LONGLONG, offsetof(HotPath, countdown), 0, "calls until on_zero is called"},
    {NULL}
};

static PyObject *
HotPath_get_name(HotPath *self, void *closure)
{
    return PyUnicode_FromString((const char *)closure);  /* as the Python path's bound method */
}

static PyGetSetDef HotPath_getset[] = {
    {"__name__", (getter)HotPath_get_name, NULL, NULL, "log_metric"},
    {"__qualname__", (getter)HotPath_get_name, NULL, NULL, "MetricRecorder.log_metric"},
    {"cursor", (getter)HotPath_get_cursor, NULL, "the Cursor slots are claimed from", NULL},
    {"recording", (getter)HotPath_get_recording, (setter)HotPath_set_recording,
     "False: every call takes the Python path (which refuses or warns)", NULL},
    {"tensor_type", (getter)HotPath_get_tensor_type, (setter)HotPath_set_tensor_type,
     "torch.Tensor, once torch is imported", NULL},
    {"__signature__", (getter)HotPath_get_signature, (setter)HotPath_set_signature,
     "the signature inspect reports", NULL},
    {NULL}
};

static PyTypeObject HotPathType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "prov4ml.metrics._hot.HotPath",
    .tp_doc = PyDoc_STR(
        "log_metric(key, value, context=None, step=None, source=None, timestamp=None)\n\n"
        "Record one point; durable against a kill when the call returns."),
    .tp_basicsize = sizeof(HotPath),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)HotPath_init,
    .tp_dealloc = (destructor)HotPath_dealloc,
    .tp_traverse = (traverseproc)HotPath_traverse,
    .tp_clear = (inquiry)HotPath_clear,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(HotPath, vectorcall),
    .tp_methods = HotPath_methods,
    .tp_members = HotPath_members,
    .tp_getset = HotPath_getset,
};

static PyObject *
HotPath_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    HotPath *self = (HotPath *)PyType_GenericNew(type, args, kwds);
    if (self != NULL)
        self->vectorcall = HotPath_vectorcall;
    return (PyObject *)self;
}

/* -------------------------------------------------------------- sink rows */

/* The metric sink's bulk formatting (rows() below): journal slots to CSV rows "step,value,time\n",
 * byte for byte what "%d,%r,%.3f\n" % (step, value, time) gives in Python, at ~10x its speed. */

#include "ryu.h"

static const char DIGIT_PAIRS[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

static const uint64_t POW10[20] = {
    1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull, 10000000ull, 100000000ull, 1000000000ull,
    10000000000ull, 100000000000ull, 1000000000000ull, 10000000000000ull, 100000000000000ull,
    1000000000000000ull, 10000000000000000ull, 100000000000000000ull, 1000000000000000000ull,
    10000000000000000000ull};

/* The number of decimal digits of x >= 1 (log10 from the bit length, corrected by one comparison). */
static inline int
decimal_length(uint64_t x)
{
    int t = ((64 - __builtin_clzll(x)) * 1233) >> 12;
    return t - (x < POW10[t]) + 1;
}

/* Exactly 8 digits of x < 10**8 at p: two independent halves, so the divisions do not wait on each other. */
static inline void
put_8digits(uint32_t x, char *p)
{
    uint32_t hi = x / 10000, lo = x - hi * 10000;
    uint32_t a = hi / 100, b = lo / 100;
    memcpy(p, DIGIT_PAIRS + 2 * a, 2);
    memcpy(p + 2, DIGIT_PAIRS + 2 * (hi - 100 * a), 2);
    memcpy(p + 4, DIGIT_PAIRS + 2 * b, 2);
    memcpy(p + 6, DIGIT_PAIRS + 2 * (lo - 100 * b), 2);
}

/* The decimal digits of x at p; returns the count. */
static inline int
put_u64(uint64_t x, char *p)
{
    if (x < 10) {
        *p = (char)('0' + x);
        return 1;
    }
    int n = decimal_length(x);
    char *e = p + n;  /* written from the end, in 8-digit pieces */
    while (x >= 100000000) {
        uint64_t q = x / 100000000;
        put_8digits((uint32_t)(x - q * 100000000), e -= 8);
        x = q;
    }
    uint32_t y = (uint32_t)x;
    while (y >= 100) {
        uint32_t q = y / 100;
        memcpy(e -= 2, DIGIT_PAIRS + 2 * (y - 100 * q), 2);
        y = q;
    }
    if (y >= 10)
        memcpy(e - 2, DIGIT_PAIRS + 2 * y, 2);
    else if (e > p)
        e[-1] = (char)('0' + y);
    return n;
}

static inline int
put_i64(int64_t x, char *p)
{
    if (x < 0) {
        *p = '-';
        return 1 + put_u64(0 - (uint64_t)x, p + 1);
    }
    return put_u64((uint64_t)x, p);
}

/* The text of a step's tens, kept: a series' steps mostly count up, so ten rows in a row share it and
 * differ in their last digit only (written into the row: the kept text is not stored to while rows read it). */
typedef struct {
    int64_t tens;  /* -1: none yet */
    int len;
    char text[24];
} StepText;

static inline int
put_step(StepText *kept, int64_t step, char *p)
{
    if (step < 0)
        return put_i64(step, p);
    int64_t tens = step / 10;
    if (tens != kept->tens) {
        kept->tens = tens;
        kept->len = put_u64((uint64_t)step, kept->text);
    }
    memcpy(p, kept->text, 24);  /* a fixed size (the row has room): one move, not a call */
    p[kept->len - 1] = (char)('0' + (step - 10 * tens));
    return kept->len;
}

/* repr(x): Ryu's shortest round-trip digits, laid out as float_repr_style 'short' does
 * (exponent form when the decimal point is at or before -4 or after 16 digits). At most 24 bytes,
 * with up to 20 more bytes of scratch after them. */
static inline int
put_repr(double x, char *p)
{
    uint64_t bits;
    memcpy(&bits, &x, 8);
    int neg = (int)(bits >> 63);
    uint64_t mant = bits & ((1ull << 52) - 1);
    uint32_t expo = (uint32_t)((bits >> 52) & 0x7ff);
    char *start = p;
    if (expo == 0x7ff) {
        if (mant) {  /* repr drops a NaN's sign */
            memcpy(p, "nan", 3);
            return 3;
        }
        if (neg)
            *p++ = '-';
        memcpy(p, "inf", 3);
        return (int)(p - start) + 3;
    }
    if (neg)
        *p++ = '-';
    if (expo == 0 && mant == 0) {
        memcpy(p, "0.0", 3);
        return (int)(p - start) + 3;
    }
    floating_decimal_64 d = d2d(mant, expo);
    while (d.mantissa % 10 == 0) {  /* Ryu may end on zeros (a rounding up); repr's digits do not */
        d.mantissa /= 10;
        d.exponent++;
    }
    int n = decimal_length(d.mantissa);
    int decpt = n + d.exponent;  /* the value is 0.DIGITS x 10^decpt */
    if (decpt > 0 && decpt < n) {  /* the common case: digits on both sides of the point, moved into place */
        put_u64(d.mantissa, p + 1);
        memmove(p, p + 1, decpt);
        p[decpt] = '.';
        return (int)(p - start) + n + 1;
    }
    if (decpt <= -4 || decpt > 16) {
        put_u64(d.mantissa, p + 1);
        p[0] = p[1];
        if (n > 1) {
            p[1] = '.';
            p += n + 1;
        }
        else {
            p += 1;
        }
        int e = decpt - 1;
        *p++ = 'e';
        *p++ = e < 0 ? '-' : '+';
        if (e < 0)
            e = -e;
        if (e >= 100)
            *p++ = (char)('0' + e / 100), e %= 100;
        memcpy(p, DIGIT_PAIRS + 2 * e, 2);
        return (int)(p + 2 - start);
    }
    if (decpt <= 0) {
        memcpy(p, "0.000", 5);  /* "0." and the -decpt (< 4) zeros after the point */
        p += 2 - decpt;
        p += put_u64(d.mantissa, p);
        return (int)(p - start);
    }
    /* decpt >= n: an integer; zeros up to the point, then ".0" */
    p += put_u64(d.mantissa, p);
    memset(p, '0', decpt - n);
    p += decpt - n;
    memcpy(p, ".0", 2);
    return (int)(p + 2 - start);
}

/* The whole seconds of the last time and their text: a series' times share them for many rows. */
typedef struct {
    uint64_t seconds;
    int len;  /* 0: none yet */
    char text[24];
} TimeText;

/* "%.3f" % t for a finite t below 2**53 in magnitude, exactly (round half to even on the binary
 * value, as Python's dtoa): t = m * 2**e, so t * 1000 = m * 1000 * 2**e in integers. Else -1. */
static inline int
put_fixed3(TimeText *last, double t, char *p)
{
    uint64_t bits;
    memcpy(&bits, &t, 8);
    int neg = (int)(bits >> 63);
    uint64_t mant = bits & ((1ull << 52) - 1);
    int expo = (int)((bits >> 52) & 0x7ff);
    if (expo >= 1023 + 53)  /* inf, NaN, or beyond 2**53: the general routine */
        return -1;
    uint64_t m = expo ? (mant | (1ull << 52)) : mant;
    int shift = (expo ? expo : 1) - 1075;  /* t = m * 2**shift */
    uint64_t q;  /* round(|t| * 1000) */
    if (shift >= 0) {
        q = (m << shift) * 1000;
    }
    else {
        uint64_t n = m * 1000;  /* < 2**63 */
        int s = -shift;
        if (s >= 64) {
            q = 0;  /* n < 2**63 <= half of 2**s */
        }
        else {
            q = n >> s;
            uint64_t r = n & ((1ull << s) - 1), half = 1ull << (s - 1);
            q += r > half || (r == half && (q & 1));
        }
    }
    char *start = p;
    if (neg)
        *p++ = '-';
    uint64_t seconds = q / 1000;
    if (!last->len || seconds != last->seconds) {
        last->seconds = seconds;
        last->len = put_u64(seconds, last->text);
    }
    memcpy(p, last->text, 24);
    p += last->len;
    unsigned frac = (unsigned)(q - seconds * 1000);
    *p++ = '.';
    *p++ = (char)('0' + frac / 100);
    memcpy(p, DIGIT_PAIRS + 2 * (frac % 100), 2);
    return (int)(p + 2 - start);
}

/* The exact sum of the values that are not NaN as non-overlapping partials (Shewchuk's, as math.fsum),
 * value by value; "failed" when it is left to the caller (an infinity, an intermediate overflow, or more
 * partials than kept here: values of very different magnitudes, where fsum grows its list). */
typedef struct {
    double p[64];  /* non-overlapping partials: a few for values of like magnitudes */
    int n, failed;
} Partials;

static inline void
partials_add(Partials *s, double x)
{
    if (!isfinite(x)) {
        s->failed = 1;
        return;
    }
    int k = 0;
    for (int j = 0; j < s->n; j++) {
        double y = s->p[j];
        if (fabs(x) < fabs(y)) {
            double swap = x;
            x = y;
            y = swap;
        }
        double hi = x + y, lo = y - (hi - x);
        if (lo != 0.0)
            s->p[k++] = lo;
        x = hi;
    }
    s->n = k;
    if (x != 0.0) {
        if (!isfinite(x) || k == 64)
            s->failed = 1;
        else
            s->p[s->n++] = x;
    }
}

/* The partials as a tuple of floats: their sum is exactly the values' sum (the sink adds it to a series'). */
static PyObject *
partials_tuple(Partials *s)
{
    PyObject *out = PyTuple_New(s->n);
    for (int i = 0; out != NULL && i < s->n; i++) {
        PyObject *x = PyFloat_FromDouble(s->p[i]);
        if (x == NULL) {
            Py_CLEAR(out);
            break;
        }
        PyTuple_SET_ITEM(out, i, x);
    }
    return out;
}

typedef struct {
    uint32_t sid;
    Py_ssize_t count, first, last;  /* first, last: slot indices */
} Group;

static inline void
record_at(const char *slot, int64_t *step, double *value, double *t, uint32_t *sid)
{
    memcpy(step, slot, 8);
    memcpy(value, slot + 8, 8);
    memcpy(t, slot + 16, 8);
    memcpy(sid, slot + 24, 4);
}

/* Where sid's group is in an open-addressing table of 2**bits entries (index + 1; 0 is empty). */
static inline Py_ssize_t *
group_slot(Py_ssize_t *table, int bits, const Group *groups, uint32_t sid)
{
    size_t mask = ((size_t)1 << bits) - 1, h = ((size_t)sid * 0x9E3779B1u) & mask;
    while (table[h] && groups[table[h] - 1].sid != sid)
        h = (h + 1) & mask;
    return &table[h];
}

/* Bytes a row takes at most with a time below 2**53: step (20), value (24), time (21), newline, two separators;
 * put_step and put_fixed3 write 24 bytes of scratch and put_repr 20 past what they keep. */
#define ROW_MAX(seplen) (66 + 2 * (seplen))
#define ROW_SLACK 48

/* One group's rows into a new bytearray, and its summary: the tuple rows() returns for it. The text is
 * made in place in a bytearray of the most a row may take: cut to its length, it keeps that allocation
 * (bytearray shrinks in place down to half), so blocks of one size free and take chunks of one size,
 * which malloc reuses; cut bytes would differ in size from block to block, each a fresh mapping whose
 * pages fault in one by one. */
static PyObject *
group_rows(const char *raw, const Py_ssize_t *next, const Group *g, const char *sep, Py_ssize_t seplen)
{
    Py_ssize_t cap = g->count * ROW_MAX(seplen) + ROW_SLACK;
    PyObject *text = PyByteArray_FromStringAndSize(NULL, cap);
    if (text == NULL)
        return NULL;
    char *p = PyByteArray_AS_STRING(text);
    StepText steps = {-1, 0, {0}};
    TimeText seconds = {0};
    Partials sum;
    sum.n = sum.failed = 0;
    Py_ssize_t nan = 0, left = g->count;
    double lo = 0.0, hi = 0.0;
    for (Py_ssize_t i = g->first; i >= 0; i = next[i], left--) {
        int64_t step;
        double v, t;
        uint32_t sid;
        record_at(raw + i * SLOT, &step, &v, &t, &sid);
        if (v != v) {
            nan++;
        }
        else {
            if (nan + left == g->count) {  /* the first number */
                lo = hi = v;
            }
            else {  /* IEEE order, -0.0 below +0.0 */
                if (v < lo || (v == 0.0 && v == lo && signbit(v)))
                    lo = v;
                if (v > hi || (v == 0.0 && v == hi && !signbit(v)))
                    hi = v;
            }
            if (!sum.failed)
                partials_add(&sum, v);
        }
        p += put_step(&steps, step, p);
        memcpy(p, sep, seplen);
        p += seplen;
        p += put_repr(v, p);
        memcpy(p, sep, seplen);
        p += seplen;
        int w = put_fixed3(&seconds, t, p);
        if (w < 0) {  /* a time no clock gives: Python's own routine, and room for it */
            char *s = PyOS_double_to_string(t, 'f', 3, 0, NULL);
            if (s == NULL)
                goto fail;
            Py_ssize_t len = (Py_ssize_t)strlen(s), at = p - PyByteArray_AS_STRING(text);
            Py_ssize_t need = at + len + 1 + (left - 1) * ROW_MAX(seplen) + ROW_SLACK;
            if (need > cap && PyByteArray_Resize(text, cap = need + cap / 2) < 0) {
                PyMem_Free(s);
                goto fail;
            }
            p = PyByteArray_AS_STRING(text) + at;
            memcpy(p, s, len);
            PyMem_Free(s);
            w = (int)len;
        }
        p += w;
        *p++ = '\n';
    }
    if (PyByteArray_Resize(text, p - PyByteArray_AS_STRING(text)) < 0)
        goto fail;
    Py_ssize_t numbers_seen = g->count - nan;
    PyObject *numbers;
    if (numbers_seen && sum.failed) {  /* the caller sums them (math.fsum, or scaled): the values, in order */
        numbers = PyBytes_FromStringAndSize(NULL, numbers_seen * 8);
        if (numbers == NULL)
            goto fail;
        char *w = PyBytes_AS_STRING(numbers);
        for (Py_ssize_t i = g->first; i >= 0; i = next[i]) {
            double v;
            memcpy(&v, raw + i * SLOT + 8, 8);
            if (v == v) {
                memcpy(w, &v, 8);
                w += 8;
            }
        }
    }
    else {
        numbers = Py_NewRef(Py_None);
    }
    int64_t first_step, last_step;
    double first_time, last_time, last;
    memcpy(&first_step, raw + g->first * SLOT, 8);
    memcpy(&first_time, raw + g->first * SLOT + 16, 8);
    memcpy(&last_step, raw + g->last * SLOT, 8);
    memcpy(&last, raw + g->last * SLOT + 8, 8);
    memcpy(&last_time, raw + g->last * SLOT + 16, 8);
    return Py_BuildValue(
        "(kNnnNNdLLddNN)", (unsigned long)g->sid, text, g->count, nan,
        numbers_seen ? PyFloat_FromDouble(lo) : Py_NewRef(Py_None),
        numbers_seen ? PyFloat_FromDouble(hi) : Py_NewRef(Py_None), last, (long long)first_step,
        (long long)last_step, first_time, last_time, numbers,
        numbers_seen && !sum.failed ? partials_tuple(&sum) : Py_NewRef(Py_None));
fail:
    Py_DECREF(text);
    return NULL;
}

static PyObject *
sink_rows(PyObject *module, PyObject *args)
{
    Py_buffer view;
    const char *sep;
    Py_ssize_t seplen;
    if (!PyArg_ParseTuple(args, "y*s#", &view, &sep, &seplen))
        return NULL;
    PyObject *out = NULL;
    Group *groups = NULL;
    Py_ssize_t *table = NULL, *next = NULL, ngroups = 0;
    Py_ssize_t n = view.len / SLOT;
    const char *raw = view.buf;
    int bits = 4;
    while (((Py_ssize_t)1 << bits) < 2 * n)
        bits++;
    table = PyMem_Calloc((size_t)1 << bits, sizeof(Py_ssize_t));
    groups = PyMem_Malloc((n ? n : 1) * sizeof(Group));
    next = PyMem_Malloc((n ? n : 1) * sizeof(Py_ssize_t));  /* the next slot of the same series */
    if (table == NULL || groups == NULL || next == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    /* Pass 1: group the slots by series, each series in journal order. */
    Group *g = NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint32_t sid;
        memcpy(&sid, raw + i * SLOT + 24, 4);
        if (sid == VOID_SID)
            continue;
        if (g == NULL || g->sid != sid) {  /* runs of one series skip the lookup */
            Py_ssize_t *where = group_slot(table, bits, groups, sid);
            if (*where == 0) {
                g = &groups[ngroups++];
                *where = ngroups;
                g->sid = sid;
                g->count = 0;
                g->first = i;
            }
            else {
                g = &groups[*where - 1];
                next[g->last] = i;
            }
        }
        else {
            next[g->last] = i;
        }
        g->last = i;
        next[i] = -1;
        g->count++;
    }
    /* Pass 2: each group's rows and summary. */
    out = PyList_New(ngroups);
    if (out == NULL)
        goto done;
    for (Py_ssize_t k = 0; k < ngroups; k++) {
        PyObject *item = group_rows(raw, next, &groups[k], sep, seplen);
        if (item == NULL) {
            Py_CLEAR(out);
            goto done;
        }
        PyList_SET_ITEM(out, k, item);
    }
done:
    PyMem_Free(groups);
    PyMem_Free(table);
    PyMem_Free(next);
    PyBuffer_Release(&view);
    return out;
}

/* ------------------------------------------------------------ summaries */

/* IEEE minimum and maximum of two numbers: -0.0 below +0.0. */
static inline PyObject *
lesser(PyObject *a, PyObject *b)
{
    double x = PyFloat_AS_DOUBLE(a), y = PyFloat_AS_DOUBLE(b);
    if (x == 0.0 && y == 0.0)
        return signbit(x) ? a : b;
    return x < y ? a : b;
}

static inline PyObject *
greater(PyObject *a, PyObject *b)
{
    double x = PyFloat_AS_DOUBLE(a), y = PyFloat_AS_DOUBLE(b);
    if (x == 0.0 && y == 0.0)
        return signbit(x) ? b : a;
    return x > y ? a : b;
}

/* total + v in units of 2**-1074 (every finite double is a whole number of them); v is finite. */
static PyObject *
add_exact(PyObject *total, double v)
{
    if (v == 0.0)
        return Py_NewRef(total);
    int e;
    long long m = (long long)ldexp(frexp(v, &e), 53);  /* v = m * 2**(e - 53), exactly */
    int shift = e + 1021;  /* v * 2**1074 = m * 2**shift */
    if (shift < 0)  /* a subnormal: m ends in at least -shift zero bits */
        m >>= -shift, shift = 0;
    PyObject *units = PyLong_FromLongLong(m), *by = PyLong_FromLong(shift), *out = NULL;
    if (units != NULL && by != NULL) {
        PyObject *scaled = PyNumber_Lshift(units, by);
        if (scaled != NULL) {
            out = PyNumber_Add(total, scaled);
            Py_DECREF(scaled);
        }
    }
    Py_XDECREF(units);
    Py_XDECREF(by);
    return out;
}

static int
set_item(PyObject *list, Py_ssize_t i, PyObject *value)  /* steals value */
{
    if (value == NULL)
        return -1;
    PyObject *old = PyList_GET_ITEM(list, i);
    PyList_SET_ITEM(list, i, value);
    Py_DECREF(old);
    return 0;
}

static int
add_count(PyObject *list, Py_ssize_t i, PyObject *n)
{
    return set_item(list, i, PyNumber_Add(PyList_GET_ITEM(list, i), n));
}

/* The sink's _fold: a group of rows() folded into a series' stats list (see _sink.py). */
static PyObject *
sink_fold(PyObject *module, PyObject *args)
{
    PyObject *stats, *g;
    if (!PyArg_ParseTuple(args, "O!O!", &PyList_Type, &stats, &PyTuple_Type, &g))
        return NULL;
    if (PyList_GET_SIZE(stats) != 11 || PyTuple_GET_SIZE(g) != 13) {
        PyErr_SetString(PyExc_ValueError, "fold(stats, group): a list of 11 and a tuple of 13");
        return NULL;
    }
    PyObject *lo = PyTuple_GET_ITEM(g, 4), *hi = PyTuple_GET_ITEM(g, 5);
    PyObject *numbers = PyTuple_GET_ITEM(g, 11), *partials = PyTuple_GET_ITEM(g, 12);
    if (lo != Py_None && !(PyFloat_CheckExact(lo) && PyFloat_CheckExact(hi))) {
        PyErr_SetString(PyExc_TypeError, "fold: min and max are floats or None");
        return NULL;
    }
    PyObject *seen = PyList_GET_ITEM(stats, 0);
    int first = PyLong_Check(seen) && PyLong_AsLong(seen) == 0;
    if (first && (set_item(stats, 6, Py_NewRef(PyTuple_GET_ITEM(g, 7))) < 0
                  || set_item(stats, 8, Py_NewRef(PyTuple_GET_ITEM(g, 9))) < 0))
        return NULL;
    if (add_count(stats, 0, PyTuple_GET_ITEM(g, 2)) < 0 || add_count(stats, 1, PyTuple_GET_ITEM(g, 3)) < 0)
        return NULL;
    if (lo != Py_None) {
        PyObject *min = PyList_GET_ITEM(stats, 2), *max = PyList_GET_ITEM(stats, 3);
        if (min != Py_None && !(PyFloat_CheckExact(min) && PyFloat_CheckExact(max))) {
            PyErr_SetString(PyExc_TypeError, "fold: the stats' min and max are floats or None");
            return NULL;
        }
        set_item(stats, 2, Py_NewRef(min == Py_None ? lo : lesser(min, lo)));
        set_item(stats, 3, Py_NewRef(max == Py_None ? hi : greater(max, hi)));
        PyObject *total = Py_NewRef(PyList_GET_ITEM(stats, 10));
        if (partials != Py_None) {
            PyObject *seq = PySequence_Fast(partials, "fold: partials is a sequence of floats");
            for (Py_ssize_t i = 0; seq != NULL && total != NULL && i < PySequence_Fast_GET_SIZE(seq); i++) {
                double v = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(seq, i));
                if (v == -1.0 && PyErr_Occurred())
                    Py_CLEAR(total);
                else if (v - v == 0.0)
                    Py_SETREF(total, add_exact(total, v));
            }
            if (seq == NULL)
                Py_CLEAR(total);
            Py_XDECREF(seq);
        }
        else {
            Py_buffer view;
            if (PyObject_GetBuffer(numbers, &view, PyBUF_SIMPLE) < 0) {
                Py_DECREF(total);
                return NULL;
            }
            const char *at = view.buf;
            for (Py_ssize_t i = 0; total != NULL && i + 8 <= view.len; i += 8) {
                double v;
                memcpy(&v, at + i, 8);
                if (v - v == 0.0)
                    Py_SETREF(total, add_exact(total, v));
            }
            PyBuffer_Release(&view);
        }
        if (set_item(stats, 10, total) < 0)
            return NULL;
    }
    set_item(stats, 4, Py_NewRef(PyTuple_GET_ITEM(g, 6)));
    set_item(stats, 7, Py_NewRef(PyTuple_GET_ITEM(g, 8)));
    set_item(stats, 9, Py_NewRef(PyTuple_GET_ITEM(g, 10)));
    Py_RETURN_NONE;
}

/* The sink's summary(stats): the first SUMMARY items, the mean made from the exact sum (see _sink._mean). */
static PyObject *
summary_of(PyObject *stats)
{
    if (!PyList_Check(stats) || PyList_GET_SIZE(stats) != 11) {
        PyErr_SetString(PyExc_ValueError, "summaries: each stats is a list of 11");
        return NULL;
    }
    PyObject *out = PyList_GetSlice(stats, 0, 10);
    if (out == NULL)
        return NULL;
    PyObject *count = PyList_GET_ITEM(stats, 0), *nan = PyList_GET_ITEM(stats, 1);
    int some = PyObject_RichCompareBool(count, nan, Py_GT);
    if (some < 0)
        Py_CLEAR(out);
    if (some <= 0)  /* no number: no mean */
        return out;
    PyObject *lo = PyList_GET_ITEM(stats, 2), *hi = PyList_GET_ITEM(stats, 3);
    if (!PyFloat_CheckExact(lo) || !PyFloat_CheckExact(hi)) {
        Py_DECREF(out);
        PyErr_SetString(PyExc_TypeError, "summaries: min and max are floats");
        return NULL;
    }
    double x = PyFloat_AS_DOUBLE(lo), y = PyFloat_AS_DOUBLE(hi);
    PyObject *mean = NULL;
    if (isfinite(x) && isfinite(y)) {
        if (x == 0.0 && y == 0.0) {
            mean = PyFloat_FromDouble(x + y);  /* all zeros: -0.0 only if every one is -0.0 */
        }
        else {  /* int / int: correctly rounded */
            PyObject *k = PyNumber_Subtract(count, nan), *by = PyLong_FromLong(1074), *den = NULL;
            if (k != NULL && by != NULL)
                den = PyNumber_Lshift(k, by);
            if (den != NULL)
                mean = PyNumber_TrueDivide(PyList_GET_ITEM(stats, 10), den);
            Py_XDECREF(k);
            Py_XDECREF(by);
            Py_XDECREF(den);
        }
    }
    else {  /* IEEE: inf with +inf alone, -inf with -inf alone, NaN with both */
        mean = PyFloat_FromDouble(x == -y ? x + y : (isinf(y) ? y : x));
    }
    if (set_item(out, 5, mean) < 0) {
        Py_DECREF(out);
        return NULL;
    }
    return out;
}

/* {key: summary(stats)} of a {sid: stats} dict; text: the keys as str(sid), as a report gives them. */
static PyObject *
sink_summarize_all(PyObject *module, PyObject *args)
{
    PyObject *all;
    int text;
    if (!PyArg_ParseTuple(args, "O!p", &PyDict_Type, &all, &text))
        return NULL;
    PyObject *out = PyDict_New(), *key, *stats;
    Py_ssize_t at = 0;
    while (out != NULL && PyDict_Next(all, &at, &key, &stats)) {
        PyObject *k = text ? PyObject_Str(key) : Py_NewRef(key);
        PyObject *v = k == NULL ? NULL : summary_of(stats);
        if (v == NULL || PyDict_SetItem(out, k, v) < 0)
            Py_CLEAR(out);
        Py_XDECREF(k);
        Py_XDECREF(v);
    }
    return out;
}

/* ------------------------------------------------------------ plot cuts */

static const double TENS[23] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14,
                                 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* The number at p, correctly rounded (Python's own reading); NAN and sets *bad when there is none, or when
 * it does not end at stop (unless stop is NULL: a field already read). */
static double
exact_number(const char *p, const char *stop, int *bad)
{
    char *end;
    double x = PyOS_string_to_double(p, &end, NULL);
    if (end == p || (stop != NULL && end != stop) || (x == -1.0 && PyErr_Occurred())) {
        PyErr_Clear();
        *bad = 1;
        return NAN;
    }
    return x;
}

/* A decimal number from p up to stop, within 2**-51 of its value (at most 19 digits, times an exact power
 * of ten): what picks a bucket's extremes, which exact_number then settles among the close ones. Numbers
 * of other forms or far exponents are read exactly. Sets *bad when the field is not a number. */
static double
approx_number(const char *p, const char *stop, int *bad)
{
    const char *q = p;
    int negative = 0;
    if (q < stop && (*q == '-' || *q == '+'))
        negative = *q++ == '-';
    uint64_t w = 0;
    int digits = 0, exp10 = 0, seen = 0;
    for (; q < stop && *q >= '0' && *q <= '9'; q++, seen = 1) {
        if (digits < 19) {
            w = w * 10 + (uint64_t)(*q - '0');
            digits += w != 0;
        }
        else
            exp10++;
    }
    if (q < stop && *q == '.') {
        for (q++; q < stop && *q >= '0' && *q <= '9'; q++, seen = 1) {
            if (digits < 19) {
                w = w * 10 + (uint64_t)(*q - '0');
                digits += w != 0;
                exp10--;
            }
        }
    }
    if (!seen || q < stop || exp10 < -22 || exp10 > 22)
        return exact_number(p, stop, bad);  /* an exponent, nan, inf, or far from 1: Python reads it */
    double x = exp10 >= 0 ? (double)w * TENS[exp10] : (double)w / TENS[-exp10];
    return negative ? -x : x;
}

/* i of [lo, hi) whose value is the lowest (sign 1) or highest (-1), NaN never winning, first of equals, as
 * NumPy's argmin/argmax of the values with NaN made +inf/-inf; approximate values pick, exact ones decide. */
static Py_ssize_t
extreme(const double *approx, const Py_ssize_t *at, const char *data, Py_ssize_t lo, Py_ssize_t hi, int sign,
        int *bad)
{
    Py_ssize_t best = lo;
    double m = INFINITY;
    for (Py_ssize_t i = lo; i < hi; i++) {
        double v = approx[i] != approx[i] ? INFINITY : sign * approx[i];
        if (v < m) {
            m = v;
            best = i;
        }
    }
    if (!isfinite(m))
        return best;
    double bound = m + fabs(m) * 0x1p-48, exact = INFINITY;
    int first = 1;
    for (Py_ssize_t i = lo; i < hi; i++) {
        double v = sign * approx[i];
        if (v <= bound) {  /* false for NaN */
            double x = sign * exact_number(data + at[i], NULL, bad);
            if (first || x < exact) {
                exact = x;
                best = i;
                first = 0;
            }
        }
    }
    return best;
}

static int
append_float(PyObject *list, double x)
{
    PyObject *f = PyFloat_FromDouble(x);
    int r = f == NULL ? -1 : PyList_Append(list, f);
    Py_XDECREF(f);
    return r;
}

/* A step as the file holds it: an int when it is one (a step beyond 2**53 stays exact), else a float. */
static int
append_step(PyObject *list, const char *p, const char *stop, int *bad)
{
    char *end;
    errno = 0;
    long long whole = strtoll(p, &end, 10);
    if (end == stop && end != p && errno == 0) {
        PyObject *n = PyLong_FromLongLong(whole);
        int r = n == NULL ? -1 : PyList_Append(list, n);
        Py_XDECREF(n);
        return r;
    }
    return append_float(list, exact_number(p, stop, bad));
}

/* cut(rows, separator, buckets) -> (steps, values, times, n) or None: see the method table. */
static PyObject *
plot_cut(PyObject *module, PyObject *args)
{
    Py_buffer view;
    const char *sep;
    Py_ssize_t seplen, buckets;
    if (!PyArg_ParseTuple(args, "y*s#n", &view, &sep, &seplen, &buckets))
        return NULL;
    PyObject *out = NULL, *steps = NULL, *values = NULL, *times = NULL;
    const char *data = view.buf, *stop = data + view.len;
    Py_ssize_t n = 0;
    for (const char *p = data; p < stop && (p = memchr(p, '\n', stop - p)) != NULL; p++)
        n++;
    Py_ssize_t *line = PyMem_Malloc((n + 1) * sizeof(Py_ssize_t)), *at = PyMem_Malloc((n + 1) * sizeof(Py_ssize_t));
    double *approx = PyMem_Malloc((n + 1) * sizeof(double));
    int bad = seplen != 1 || buckets < 1 || (view.len && data[view.len - 1] != '\n');
    if (line == NULL || at == NULL || approx == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    /* Each line: three fields; the value's approximately, where it starts. */
    const char *p = data;
    for (Py_ssize_t i = 0; i < n && !bad; i++) {
        const char *eol = memchr(p, '\n', stop - p);
        const char *s1 = memchr(p, sep[0], eol - p);
        const char *s2 = s1 ? memchr(s1 + 1, sep[0], eol - s1 - 1) : NULL;
        if (s1 == NULL || s2 == NULL || s1 == p || s2 == s1 + 1 || eol == s2 + 1 || memchr(s2 + 1, sep[0], eol - s2 - 1)) {
            bad = 1;
            break;
        }
        line[i] = p - data;
        at[i] = s1 + 1 - data;
        approx[i] = approx_number(s1 + 1, s2, &bad);
        p = eol + 1;
    }
    if (bad) {
        out = Py_NewRef(Py_None);
        goto done;
    }
    /* The rows kept, in order: all of few; else of each bucket the first, the last, the lowest, the highest. */
    Py_ssize_t *keep = PyMem_Malloc((4 * buckets + 8) * sizeof(Py_ssize_t)), kept = 0;
    if (keep == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if (n <= 4 * buckets) {
        for (Py_ssize_t i = 0; i < n; i++)
            keep[kept++] = i;
    }
    else {
        Py_ssize_t size = (n + buckets - 1) / buckets;
        for (Py_ssize_t lo = 0; lo < n && !bad; lo += size) {
            Py_ssize_t hi = lo + size < n ? lo + size : n;
            Py_ssize_t four[4] = {lo, hi - 1, extreme(approx, at, data, lo, hi, 1, &bad),
                                  extreme(approx, at, data, lo, hi, -1, &bad)};
            for (int a = 1; a < 4; a++)  /* sort four */
                for (int b = a; b > 0 && four[b] < four[b - 1]; b--) {
                    Py_ssize_t t = four[b];
                    four[b] = four[b - 1];
                    four[b - 1] = t;
                }
            for (int a = 0; a < 4; a++)
                if (a == 0 || four[a] != four[a - 1])
                    keep[kept++] = four[a];
        }
    }
    steps = PyList_New(0);
    values = PyList_New(0);
    times = PyList_New(0);
    for (Py_ssize_t k = 0; k < kept && !bad && steps && values && times; k++) {
        Py_ssize_t i = keep[k];
        const char *s2 = memchr(data + at[i], sep[0], stop - data - at[i]), *eol = memchr(s2, '\n', stop - s2);
        if (eol[-1] == '\r')
            eol--;
        double v = exact_number(data + at[i], NULL, &bad), t = exact_number(s2 + 1, eol, &bad);
        if (append_step(steps, data + line[i], data + at[i] - 1, &bad) < 0 || append_float(values, v) < 0
            || append_float(times, t) < 0) {
            PyMem_Free(keep);
            goto done;
        }
    }
    PyMem_Free(keep);
    if (steps == NULL || values == NULL || times == NULL)
        goto done;
    out = bad ? Py_NewRef(Py_None) : Py_BuildValue("(OOOn)", steps, values, times, n);
done:
    Py_XDECREF(steps);
    Py_XDECREF(values);
    Py_XDECREF(times);
    PyMem_Free(line);
    PyMem_Free(at);
    PyMem_Free(approx);
    PyBuffer_Release(&view);
    return out;
}

/* ------------------------------------------------------------ journal reads */

/* The sink's read of a journal segment: a copy of the slots from `first` that are committed, up to the
 * first that is not (or `end`). A record is whole once its commit word is set (the writers store it
 * last: log_metric's C path with a release store, struct.pack_into in field order), so each commit word
 * is loaded (acquire) before any payload is copied: a record being written is never taken half made. */
static PyObject *
journal_committed(PyObject *module, PyObject *args)
{
    PyObject *mapping;
    Py_ssize_t first, end;
    if (!PyArg_ParseTuple(args, "Onn", &mapping, &first, &end))
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(mapping, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *out = NULL;
    if (first < 0 || end < first || end > view.len / SLOT) {
        PyErr_SetString(PyExc_ValueError, "the slots are not in the mapping");
        goto done;
    }
    const char *base = view.buf;
    Py_ssize_t i = first;
    while (i < end && __atomic_load_n((const uint32_t *)(base + i * SLOT + 28), __ATOMIC_ACQUIRE) == (uint32_t)(i + 1))
        i++;
    out = PyBytes_FromStringAndSize(base + first * SLOT, (i - first) * SLOT);
done:
    PyBuffer_Release(&view);
    return out;
}

static PyMethodDef module_methods[] = {
    {"rows", sink_rows, METH_VARARGS,
     "rows(slots, separator) -> [(sid, text, count, nan_count, min, max, last, first_step, last_step,\n"
     "first_time, last_time, numbers, partials)]: journal slots (32 bytes each; void ones skipped) grouped by series\n"
     "in order of first appearance; text (a bytearray) is the series' CSV rows, exactly '%d{sep}%r{sep}%.3f\\n' of\n"
     "each point; min and max are None when every value is NaN (-0.0 is below 0.0); partials is a tuple of\n"
     "floats whose exact sum is the values' that are not NaN (math.fsum's partials), or None where it is left\n"
     "to the caller (an infinity, an intermediate overflow, values of very different magnitudes), and then\n"
     "numbers holds those values as native doubles (else None)."},
    {"fold", sink_fold, METH_VARARGS,
     "fold(stats, group): a group of rows() folded into a series' summary list (the sink's _fold, in C)."},
    {"summarize_all", sink_summarize_all, METH_VARARGS,
     "summarize_all(stats, text): {sid: summary} of the sink's {sid: stats}, each as _sink.summary makes it; text: "
     "the keys as str(sid)."},
    {"cut", plot_cut, METH_VARARGS,
     "cut(rows, separator, buckets) -> (steps, values, times, n) or None: the rows (n whole lines of a CSV metric\n"
     "file, step{sep}value{sep}time) a plot keeps, read exactly (steps as ints where they are): all of them up to\n"
     "4 * buckets, else of each of buckets runs of ceil(n / buckets) rows the first, the last, the lowest and the\n"
     "highest value (NaN never wins; first of equals), in order: plots.minmax_indices. None when a line is not\n"
     "three fields with a number as value, or the separator is not one character (the caller reads the file\n"
     "another way)."},
    {"committed", journal_committed, METH_VARARGS,
     "committed(mapping, first, end) -> bytes: a copy of the journal slots from first (before end) that are\n"
     "committed, up to the first that is not; each commit word is read before its record."},
    {NULL}
};

/* ------------------------------------------------------------------ module */

static struct PyModuleDef hot_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "prov4ml.metrics._hot",
    .m_doc = "The hot path of log_metric in C (see hotpath.py).",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__hot(void)
{
    HotPathType.tp_new = HotPath_new;
    if (PyType_Ready(&CursorType) < 0 || PyType_Ready(&HotPathType) < 0)
        return NULL;
    if (!(s_context = PyUnicode_InternFromString("context")) || !(s_step = PyUnicode_InternFromString("step")) ||
        !(s_is_cpu = PyUnicode_InternFromString("is_cpu")) ||
        !(s_is_sparse = PyUnicode_InternFromString("is_sparse")) || !(s_item = PyUnicode_InternFromString("item")))
        return NULL;
    PyObject *m = PyModule_Create(&hot_module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "Cursor", (PyObject *)&CursorType) < 0 ||
        PyModule_AddObjectRef(m, "HotPath", (PyObject *)&HotPathType) < 0 ||
        PyModule_AddIntConstant(m, "SLOT", SLOT) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
