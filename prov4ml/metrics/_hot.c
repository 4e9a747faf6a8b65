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

/* ------------------------------------------------------------------ module */

static struct PyModuleDef hot_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "prov4ml.metrics._hot",
    .m_doc = "The hot path of log_metric in C (see hotpath.py).",
    .m_size = -1,
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
