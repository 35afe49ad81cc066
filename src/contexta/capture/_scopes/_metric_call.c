/*
 * The compiled fast path of `Scope.metric()`: the call a training loop makes millions of times.
 *
 * A `MetricCall` is bound to one open scope. It handles only the common call, `metric(key, value)` or
 * `metric(key, value, step=step)` with a key already checked once, a finite float (or a 64-bit int) and
 * a non-negative int step, while the queue is below its limit. It then does exactly what the Python
 * method does: stamp the time and append the same METRIC item (the 9-tuple `metric_item` declares in
 * capture/_items.py; tests/capture/test_item_layouts.py holds the two equal) to the queue's deque,
 * the one append besides `CaptureQueue.put` (see capture/_pipeline/_queue.py). Every other call
 * (a new key, a bad value, other options, a full queue, a sleeping writer, a closed scope) is handed
 * unchanged to the Python method, which applies the rules (capture/_scopes/_metric_checks.py) and
 * raises the errors. So the compiled part never decides anything the Python part would decide
 * differently, and without it (not built, or `capture.compiled_metric = False`) the Python method
 * is used directly.
 *
 * Why C: in CPython 3.11 a Python method spends about 200 ns on this call's checks, keyword handling
 * and attribute loads; here they cost a few tens of nanoseconds.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stddef.h>
#include <time.h>

static PyObject *str_step;  /* "step", interned: keyword names written in source are the same object */
static PyObject *str_limit; /* "limit", the queue attribute the hot path compares the length with */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *fallback;      /* the Python metric bound to the scope: every call but the common one */
    PyObject *items;         /* the queue's deque; NULL once the scope is closed */
    PyObject *append;        /* items.append; NULL once the scope is closed */
    PyObject *queue;         /* its `limit` bounds the deque (see capture/_pipeline/_queue.py) */
    PyObject *fields;        /* the scope's context tuple, carried by every metric item */
    PyObject *known_keys;    /* metric keys that passed their check */
    PyObject *kind;          /* the METRIC item kind */
    PyObject *accepted;      /* what an accepted call returns */
    PyObject *default_scope; /* the default aggregation scope, "step" */
} MetricCall;

/* Every object a MetricCall holds, for the garbage collector's traverse and clear: one list to keep. */
#define EACH_REFERENCE(DO)                                                                          \
    do {                                                                                            \
        DO(self->fallback);                                                                         \
        DO(self->items);                                                                            \
        DO(self->append);                                                                           \
        DO(self->queue);                                                                            \
        DO(self->fields);                                                                           \
        DO(self->known_keys);                                                                       \
        DO(self->kind);                                                                             \
        DO(self->accepted);                                                                         \
        DO(self->default_scope);                                                                    \
    } while (0)

/* True for an exact int (not a bool) that fits in a signed 64-bit integer. */
static int
is_int64(PyObject *value)
{
    int overflow;
    if (!PyLong_CheckExact(value)) {
        return 0;
    }
    (void)PyLong_AsLongLongAndOverflow(value, &overflow);
    return overflow == 0;
}

/* True for an exact int from 0 to 2**63 - 1, the steps the Python method accepts. */
static int
is_step(PyObject *step)
{
    int overflow;
    long long number;
    if (!PyLong_CheckExact(step)) {
        return 0;
    }
    number = PyLong_AsLongLongAndOverflow(step, &overflow);
    return overflow == 0 && number >= 0;
}

static PyObject *
metric_call_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    MetricCall *self = (MetricCall *)callable;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *key, *value, *step = Py_None, *limit_object, *item, *appended;
    Py_ssize_t length, limit;
    struct timespec now;
    int known;

    if (nargs != 2 || self->items == NULL) {
        goto python;
    }
    if (kwnames != NULL) {
        if (PyTuple_GET_SIZE(kwnames) != 1 || PyTuple_GET_ITEM(kwnames, 0) != str_step) {
            goto python;
        }
        step = args[2];
        if (step != Py_None && !is_step(step)) {
            goto python;
        }
    }
    key = args[0];
    value = args[1];
    if (!PyUnicode_CheckExact(key)) {
        goto python;
    }
    known = PySet_Contains(self->known_keys, key);
    if (known < 0) {
        return NULL;
    }
    if (!known) {
        goto python;
    }
    if (PyFloat_CheckExact(value)) {
        if (!isfinite(PyFloat_AS_DOUBLE(value))) {
            goto python;
        }
    }
    else if (!is_int64(value)) {
        goto python;
    }

    length = PyObject_Size(self->items);
    if (length < 0) {
        return NULL;
    }
    limit_object = PyObject_GetAttr(self->queue, str_limit);
    if (limit_object == NULL) {
        return NULL;
    }
    limit = PyLong_AsSsize_t(limit_object);
    Py_DECREF(limit_object);
    if (limit == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (length >= limit) {
        goto python;
    }

    /* time.time_ns() reads the same clock. */
    if (clock_gettime(CLOCK_REALTIME, &now) != 0) {
        goto python;
    }
    item = PyTuple_New(9);
    if (item == NULL) {
        return NULL;
    }
    PyTuple_SET_ITEM(item, 1, PyLong_FromLongLong((long long)now.tv_sec * 1000000000LL + now.tv_nsec));
    if (PyTuple_GET_ITEM(item, 1) == NULL) {
        Py_DECREF(item);
        return NULL;
    }
    PyTuple_SET_ITEM(item, 0, Py_NewRef(self->kind));
    PyTuple_SET_ITEM(item, 2, Py_NewRef(self->fields));
    PyTuple_SET_ITEM(item, 3, Py_NewRef(key));
    PyTuple_SET_ITEM(item, 4, Py_NewRef(value));
    PyTuple_SET_ITEM(item, 5, Py_NewRef(Py_None));
    PyTuple_SET_ITEM(item, 6, Py_NewRef(step));
    PyTuple_SET_ITEM(item, 7, Py_NewRef(self->default_scope));
    PyTuple_SET_ITEM(item, 8, Py_NewRef(Py_None));
    appended = PyObject_CallOneArg(self->append, item);
    Py_DECREF(item);
    if (appended == NULL) {
        return NULL;
    }
    Py_DECREF(appended);
    return Py_NewRef(self->accepted);

python:
    if (self->fallback == NULL) { /* cleared by the garbage collector while still referenced */
        PyErr_SetString(PyExc_TypeError, "MetricCall was not initialised");
        return NULL;
    }
    return PyObject_Vectorcall(self->fallback, args, nargsf, kwnames);
}

static int
metric_call_init(PyObject *op, PyObject *args, PyObject *kwargs)
{
    MetricCall *self = (MetricCall *)op;
    static char *keywords[] = {
        "fallback", "items", "queue", "fields", "known_keys", "kind", "accepted", "default_scope", NULL,
    };
    PyObject *fallback, *items, *queue, *fields, *known_keys, *kind, *accepted, *default_scope, *append;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOO!O!OOU:MetricCall", keywords, &fallback, &items,
                                     &queue, &PyTuple_Type, &fields, &PySet_Type, &known_keys, &kind,
                                     &accepted, &default_scope)) {
        return -1;
    }
    if (!PyCallable_Check(fallback)) {
        PyErr_SetString(PyExc_TypeError, "MetricCall: fallback must be callable");
        return -1;
    }
    append = PyObject_GetAttrString(items, "append");
    if (append == NULL) {
        return -1;
    }
    Py_XSETREF(self->fallback, Py_NewRef(fallback));
    Py_XSETREF(self->items, Py_NewRef(items));
    Py_XSETREF(self->append, append);
    Py_XSETREF(self->queue, Py_NewRef(queue));
    Py_XSETREF(self->fields, Py_NewRef(fields));
    Py_XSETREF(self->known_keys, Py_NewRef(known_keys));
    Py_XSETREF(self->kind, Py_NewRef(kind));
    Py_XSETREF(self->accepted, Py_NewRef(accepted));
    Py_XSETREF(self->default_scope, Py_NewRef(default_scope));
    self->vectorcall = metric_call_vectorcall;
    return 0;
}

static PyObject *
metric_call_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    MetricCall *self = (MetricCall *)type->tp_alloc(type, 0);
    if (self != NULL) {
        /* Until __init__ has run, every call goes to `fallback`, which is not set: refuse it. */
        self->vectorcall = NULL;
    }
    return (PyObject *)self;
}

static PyObject *
metric_call_tp_call(PyObject *op, PyObject *args, PyObject *kwargs)
{
    MetricCall *self = (MetricCall *)op;
    if (self->fallback == NULL) {
        PyErr_SetString(PyExc_TypeError, "MetricCall was not initialised");
        return NULL;
    }
    return PyVectorcall_Call(op, args, kwargs);
}

static int
metric_call_traverse(PyObject *op, visitproc visit, void *arg)
{
    MetricCall *self = (MetricCall *)op;
    EACH_REFERENCE(Py_VISIT);
    return 0;
}

static int
metric_call_clear(PyObject *op)
{
    MetricCall *self = (MetricCall *)op;
    EACH_REFERENCE(Py_CLEAR);
    return 0;
}

static void
metric_call_dealloc(PyObject *op)
{
    PyObject_GC_UnTrack(op);
    (void)metric_call_clear(op);
    Py_TYPE(op)->tp_free(op);
}

static PyObject *
metric_call_close(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    MetricCall *self = (MetricCall *)op;
    Py_CLEAR(self->items);
    Py_CLEAR(self->append);
    Py_RETURN_NONE;
}

static PyObject *
metric_call_get_wrapped(PyObject *op, void *Py_UNUSED(closure))
{
    MetricCall *self = (MetricCall *)op;
    if (self->fallback == NULL) {
        PyErr_SetString(PyExc_AttributeError, "__wrapped__");
        return NULL;
    }
    return Py_NewRef(self->fallback);
}

static PyObject *
metric_call_get_doc(PyObject *op, void *Py_UNUSED(closure))
{
    MetricCall *self = (MetricCall *)op;
    if (self->fallback == NULL) {
        Py_RETURN_NONE;
    }
    return PyObject_GetAttrString(self->fallback, "__doc__");
}

static PyObject *
metric_call_get_closed(PyObject *op, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(((MetricCall *)op)->items == NULL);
}

static PyObject *
metric_call_repr(PyObject *op)
{
    MetricCall *self = (MetricCall *)op;
    if (self->fallback == NULL) {
        return PyUnicode_FromString("<MetricCall (not initialised)>");
    }
    return PyUnicode_FromFormat("<compiled %R>", self->fallback);
}

static PyMethodDef metric_call_methods[] = {
    {"close", metric_call_close, METH_NOARGS,
     "Send every later call to the Python method (the scope closed: it raises ClosedScopeError)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef metric_call_getset[] = {
    {"__wrapped__", metric_call_get_wrapped, NULL, "the Python method, whose signature this call has", NULL},
    {"__doc__", metric_call_get_doc, NULL, NULL, NULL},
    {"closed", metric_call_get_closed, NULL, "whether every call now goes to the Python method", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject MetricCallType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "contexta.capture._scopes._metric_call.MetricCall",
    .tp_basicsize = sizeof(MetricCall),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(MetricCall, vectorcall),
    .tp_call = metric_call_tp_call,
    .tp_new = metric_call_new,
    .tp_init = metric_call_init,
    .tp_dealloc = metric_call_dealloc,
    .tp_traverse = metric_call_traverse,
    .tp_clear = metric_call_clear,
    .tp_repr = metric_call_repr,
    .tp_methods = metric_call_methods,
    .tp_getset = metric_call_getset,
};

static struct PyModuleDef metric_call_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "contexta.capture._scopes._metric_call",
    .m_doc = "The compiled fast path of Scope.metric(); the Python method is the reference.",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__metric_call(void)
{
    PyObject *module;
    str_step = PyUnicode_InternFromString("step");
    str_limit = PyUnicode_InternFromString("limit");
    if (str_step == NULL || str_limit == NULL || PyType_Ready(&MetricCallType) < 0) {
        return NULL;
    }
    module = PyModule_Create(&metric_call_module);
    if (module == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(module, "MetricCall", (PyObject *)&MetricCallType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
