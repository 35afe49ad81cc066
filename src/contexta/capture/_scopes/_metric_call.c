/*
 * The compiled fast paths of `Scope.metric()` and `Scope.metrics()`: the calls a training loop makes
 * millions of times.
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
 * A `MetricsCall` does the same for `metrics(values)` and `metrics(values, step=step)` with a plain
 * dict whose every key is a known str and every value such a number: it appends the METRICS item
 * (`metrics_item`) and hands every other call to `Scope.metrics`.
 *
 * The async facade binds a `MetricCall` to its shell with `accepted` set to a `Completed` awaitable:
 * the common call is queued at once and `await` takes its result without a coroutine frame; every
 * other call goes to the shell's `async def metric`, which awaits room in a full queue.
 *
 * Why C: in CPython 3.11 a Python method spends about 200 ns on this call's checks, keyword handling
 * and attribute loads; here they cost a few tens of nanoseconds.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stddef.h>
#include <string.h>
#include <structmember.h>
#include <time.h>

static PyObject *str_step;  /* "step", interned: keyword names written in source are the same object */
static PyObject *str_limit; /* "limit", the queue attribute the hot path compares the length with */
static PyObject *str_limit_cell; /* "limit_cell", the same limit as one machine integer (see has_room) */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *fallback;      /* the Python metric bound to the scope: every call but the common one */
    PyObject *items;         /* the queue's deque; NULL once the scope is closed */
    PyObject *append;        /* items.append; NULL once the scope is closed */
    PyCFunction append_function; /* its C function (deque.append takes one argument), called directly */
    PyObject *queue;         /* its `limit` bounds the deque (see capture/_pipeline/_queue.py) */
    PyObject *fields;        /* the scope's context tuple, carried by every metric item */
    PyObject *known_keys;    /* metric keys that passed their check */
    PyObject *kind;          /* the METRIC item kind */
    PyObject *accepted;      /* what an accepted call returns */
    PyObject *default_scope; /* the default aggregation scope, "step" (NULL in a MetricsCall) */
    int atomic_parts;        /* kind and default_scope are atomic and fields an exact tuple (see untrack_item) */
    Py_buffer limit_view;    /* the queue's `limit_cell`, held while bound (limit_view.obj NULL without) */
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

/* True for a value the Python rules keep as it is: a finite exact float or an exact 64-bit int. */
static int
is_plain_number(PyObject *value)
{
    if (PyFloat_CheckExact(value)) {
        return isfinite(PyFloat_AS_DOUBLE(value));
    }
    return is_int64(value);
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

/* The step of a call whose only keyword may be `step` (a valid one, or None): Py_None without it,
 * NULL when the call has other keywords or a step the Python method must judge. */
static PyObject *
common_step(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *step;
    if (kwnames == NULL) {
        return Py_None;
    }
    if (PyTuple_GET_SIZE(kwnames) != 1 || PyTuple_GET_ITEM(kwnames, 0) != str_step) {
        return NULL;
    }
    step = args[nargs];
    return step == Py_None || is_step(step) ? step : NULL;
}

/* 1 for a known exact-str key, 0 for any other, -1 on error. */
static int
is_known_key(MetricCall *self, PyObject *key)
{
    if (!PyUnicode_CheckExact(key)) {
        return 0;
    }
    return PySet_Contains(self->known_keys, key);
}

/* 1 while the queue's deque is below the queue's `limit` (`CaptureQueue.put`'s own test), 0 at or
 * beyond it (then the Python method puts, waking the writer or applying the policy), -1 on error.
 * A CaptureQueue keeps its limit in `limit_cell` too, a one-item array('q') written with `limit`:
 * read through the buffer held since binding, the test costs a load instead of an attribute lookup
 * (with append_function below: 119-120 -> 99-109 ns per call, best rounds of
 * benchmarks/test_capture_hot_path.py). Any other queue object is asked for its `limit` attribute. */
static int
has_room(MetricCall *self)
{
    PyObject *limit_object;
    Py_ssize_t length, limit;

    length = PyObject_Size(self->items);
    if (length < 0) {
        return -1;
    }
    if (self->limit_view.obj != NULL) {
        return length < *(volatile long long *)self->limit_view.buf;
    }
    limit_object = PyObject_GetAttr(self->queue, str_limit);
    if (limit_object == NULL) {
        return -1;
    }
    limit = PyLong_AsSsize_t(limit_object);
    Py_DECREF(limit_object);
    if (limit == -1 && PyErr_Occurred()) {
        return -1;
    }
    return length < limit;
}

/* Now, in ns since the epoch (time.time_ns() reads the same clock), or NULL with no error set when
 * the clock cannot be read (then the Python method stamps the time). */
static PyObject *
now_ns(void)
{
    struct timespec now;
    if (clock_gettime(CLOCK_REALTIME, &now) != 0) {
        return NULL;
    }
    return PyLong_FromLongLong((long long)now.tv_sec * 1000000000LL + now.tv_nsec);
}

/* Take a new item out of the cyclic garbage collector's sight when nothing in it can lead back to it.
 * The collector does the same to such a tuple the first time it looks at it (CPython's
 * _PyTuple_MaybeUntrack), but a queued item waits in the deque across several young-generation
 * collections, each of which walks it: in rounds of 10,000 calls that cost each call about 80 ns, more
 * than the call itself. The item's key, value, step and time are atomic (exact str, float and int, or
 * None: the checks above), the kind and default scope were found atomic when the call was bound
 * (`atomic_parts`), and the scope's fields must be a tuple the collector has already let go of (a tuple
 * of strs and None: within the first collection after the scope opened). */
static void
untrack_item(MetricCall *self, PyObject *item)
{
    if (self->atomic_parts && !PyObject_GC_IsTracked(self->fields)) {
        PyObject_GC_UnTrack(item);
    }
}

/* Append `item` (a new reference, always released) to the queue's deque: 1 when appended, 0 when the
 * scope closed meanwhile (an allocation may run a finalizer that lets another thread close it: then
 * the Python method raises ClosedScopeError), -1 on error. */
static int
append_item(MetricCall *self, PyObject *item)
{
    PyObject *append = self->append, *appended;
    if (append == NULL) {
        Py_DECREF(item);
        return 0;
    }
    Py_INCREF(append);
    if (self->append_function != NULL) {
        appended = self->append_function(PyCFunction_GET_SELF(append), item);
    }
    else {
        appended = PyObject_CallOneArg(append, item);
    }
    Py_DECREF(append);
    Py_DECREF(item);
    if (appended == NULL) {
        return -1;
    }
    Py_DECREF(appended);
    return 1;
}

/* Hand the call, unchanged, to the Python method. */
static PyObject *
call_fallback(MetricCall *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    if (self->fallback == NULL) { /* cleared by the garbage collector while still referenced */
        PyErr_Format(PyExc_TypeError, "%s was not initialised", Py_TYPE(self)->tp_name);
        return NULL;
    }
    return PyObject_Vectorcall(self->fallback, args, nargsf, kwnames);
}

static PyObject *
metric_call_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    MetricCall *self = (MetricCall *)callable;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *key, *value, *step, *t_ns, *item;
    int status;

    if (nargs != 2 || self->items == NULL || (step = common_step(args, nargs, kwnames)) == NULL) {
        goto python;
    }
    key = args[0];
    value = args[1];
    if ((status = is_known_key(self, key)) <= 0) {
        if (status < 0) {
            return NULL;
        }
        goto python;
    }
    if (!is_plain_number(value)) {
        goto python;
    }
    if ((status = has_room(self)) <= 0) {
        if (status < 0) {
            return NULL;
        }
        goto python;
    }
    if ((t_ns = now_ns()) == NULL) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        goto python;
    }
    item = PyTuple_New(9);
    if (item == NULL) {
        Py_DECREF(t_ns);
        return NULL;
    }
    PyTuple_SET_ITEM(item, 0, Py_NewRef(self->kind));
    PyTuple_SET_ITEM(item, 1, t_ns);
    PyTuple_SET_ITEM(item, 2, Py_NewRef(self->fields));
    PyTuple_SET_ITEM(item, 3, Py_NewRef(key));
    PyTuple_SET_ITEM(item, 4, Py_NewRef(value));
    PyTuple_SET_ITEM(item, 5, Py_NewRef(Py_None));
    PyTuple_SET_ITEM(item, 6, Py_NewRef(step));
    PyTuple_SET_ITEM(item, 7, Py_NewRef(self->default_scope));
    PyTuple_SET_ITEM(item, 8, Py_NewRef(Py_None));
    untrack_item(self, item);
    if ((status = append_item(self, item)) <= 0) {
        if (status < 0) {
            return NULL;
        }
        goto python;
    }
    return Py_NewRef(self->accepted);

python:
    return call_fallback(self, args, nargsf, kwnames);
}

/* The (key, value) pairs of a dict whose every key is known and every value a plain number, in the
 * dict's order (what `tuple(values.items())` gives); NULL with no error set for any other dict. Each
 * pair is checked as it is read, and the count at the end, so a dict changed meanwhile (by a
 * finalizer an allocation ran) is handed to the Python method rather than half taken. */
static PyObject *
common_pairs(MetricCall *self, PyObject *values)
{
    Py_ssize_t count = PyDict_GET_SIZE(values), position = 0, index = 0;
    PyObject *pairs, *key, *value, *pair;
    int known;

    pairs = PyTuple_New(count);
    if (pairs == NULL) {
        return NULL;
    }
    while (PyDict_Next(values, &position, &key, &value)) {
        if (index == count || !is_plain_number(value)) {
            goto decline;
        }
        if ((known = is_known_key(self, key)) <= 0) {
            if (known < 0) {
                Py_DECREF(pairs);
                return NULL;
            }
            goto decline;
        }
        pair = PyTuple_Pack(2, key, value);
        if (pair == NULL) {
            Py_DECREF(pairs);
            return NULL;
        }
        PyObject_GC_UnTrack(pair); /* a str and a number: nothing in it can lead back to it */
        PyTuple_SET_ITEM(pairs, index++, pair);
    }
    if (index == count) {
        PyObject_GC_UnTrack(pairs); /* pairs of a str and a number, each out of the collector's sight */
        return pairs;
    }
decline:
    Py_DECREF(pairs);
    return NULL;
}

static PyObject *
metrics_call_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    MetricCall *self = (MetricCall *)callable;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *values, *step, *pairs, *t_ns, *item;
    int status;

    if (nargs != 1 || self->items == NULL || (step = common_step(args, nargs, kwnames)) == NULL) {
        goto python;
    }
    values = args[0];
    if (!PyDict_CheckExact(values) || PyDict_GET_SIZE(values) == 0) {
        goto python;
    }
    if ((status = has_room(self)) <= 0) {
        if (status < 0) {
            return NULL;
        }
        goto python;
    }
    if ((pairs = common_pairs(self, values)) == NULL) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        goto python;
    }
    if ((t_ns = now_ns()) == NULL) {
        Py_DECREF(pairs);
        if (PyErr_Occurred()) {
            return NULL;
        }
        goto python;
    }
    item = PyTuple_New(6);
    if (item == NULL) {
        Py_DECREF(pairs);
        Py_DECREF(t_ns);
        return NULL;
    }
    PyTuple_SET_ITEM(item, 0, Py_NewRef(self->kind));
    PyTuple_SET_ITEM(item, 1, t_ns);
    PyTuple_SET_ITEM(item, 2, Py_NewRef(self->fields));
    PyTuple_SET_ITEM(item, 3, pairs);
    PyTuple_SET_ITEM(item, 4, Py_NewRef(Py_None));
    PyTuple_SET_ITEM(item, 5, Py_NewRef(step));
    untrack_item(self, item); /* its pairs are out of sight already (see `common_pairs`) */
    if ((status = append_item(self, item)) <= 0) {
        if (status < 0) {
            return NULL;
        }
        goto python;
    }
    return Py_NewRef(self->accepted);

python:
    return call_fallback(self, args, nargsf, kwnames);
}

/* Hold the queue's `limit_cell` (a writable one-item array('q')) for has_room; 0 without one, -1 on
 * an error other than its absence. Held, the array cannot be resized under the pointer. */
static int
hold_limit_cell(MetricCall *self, PyObject *queue)
{
    PyObject *cell;
    cell = PyObject_GetAttr(queue, str_limit_cell);
    if (cell == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
            return -1;
        }
        PyErr_Clear();
        return 0;
    }
    if (PyObject_GetBuffer(cell, &self->limit_view, PyBUF_FORMAT) < 0) {
        Py_DECREF(cell);
        return -1;
    }
    Py_DECREF(cell);
    if (self->limit_view.len != sizeof(long long) || self->limit_view.format == NULL ||
        strcmp(self->limit_view.format, "q") != 0) {
        PyBuffer_Release(&self->limit_view);
        PyErr_SetString(PyExc_TypeError, "the queue's limit_cell must be array('q') of one item");
        return -1;
    }
    return 1;
}

/* The C function behind a bound builtin method taking one argument (deque.append), or NULL. */
static PyCFunction
one_argument_function(PyObject *method)
{
    if (!PyCFunction_Check(method) || PyCFunction_GET_SELF(method) == NULL ||
        (PyCFunction_GET_FLAGS(method) & ~METH_COEXIST) != METH_O) {
        return NULL;
    }
    return PyCFunction_GET_FUNCTION(method);
}

/* Bind a MetricCall or MetricsCall to its scope (both __init__s end here). */
static int
bind_call(MetricCall *self, PyObject *fallback, PyObject *items, PyObject *queue, PyObject *fields,
          PyObject *known_keys, PyObject *kind, PyObject *accepted, PyObject *default_scope,
          vectorcallfunc vectorcall)
{
    PyObject *append;
    if (!PyCallable_Check(fallback)) {
        PyErr_Format(PyExc_TypeError, "%s: fallback must be callable", Py_TYPE(self)->tp_name);
        return -1;
    }
    append = PyObject_GetAttrString(items, "append");
    if (append == NULL) {
        return -1;
    }
    if (self->limit_view.obj != NULL) { /* __init__ called again */
        PyBuffer_Release(&self->limit_view);
    }
    if (hold_limit_cell(self, queue) < 0) {
        Py_DECREF(append);
        return -1;
    }
    self->append_function = one_argument_function(append);
    Py_XSETREF(self->fallback, Py_NewRef(fallback));
    Py_XSETREF(self->items, Py_NewRef(items));
    Py_XSETREF(self->append, append);
    Py_XSETREF(self->queue, Py_NewRef(queue));
    Py_XSETREF(self->fields, Py_NewRef(fields));
    Py_XSETREF(self->known_keys, Py_NewRef(known_keys));
    Py_XSETREF(self->kind, Py_NewRef(kind));
    Py_XSETREF(self->accepted, Py_NewRef(accepted));
    Py_XSETREF(self->default_scope, Py_XNewRef(default_scope));
    self->atomic_parts = !PyObject_IS_GC(kind) && PyTuple_CheckExact(fields) &&
                         (default_scope == NULL || !PyObject_IS_GC(default_scope));
    self->vectorcall = vectorcall;
    return 0;
}

static int
metric_call_init(PyObject *op, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {
        "fallback", "items", "queue", "fields", "known_keys", "kind", "accepted", "default_scope", NULL,
    };
    PyObject *fallback, *items, *queue, *fields, *known_keys, *kind, *accepted, *default_scope;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOO!O!OOU:MetricCall", keywords, &fallback, &items,
                                     &queue, &PyTuple_Type, &fields, &PySet_Type, &known_keys, &kind,
                                     &accepted, &default_scope)) {
        return -1;
    }
    return bind_call((MetricCall *)op, fallback, items, queue, fields, known_keys, kind, accepted,
                     default_scope, metric_call_vectorcall);
}

static int
metrics_call_init(PyObject *op, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"fallback", "items", "queue", "fields", "known_keys", "kind", "accepted", NULL};
    PyObject *fallback, *items, *queue, *fields, *known_keys, *kind, *accepted;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOO!O!OO:MetricsCall", keywords, &fallback, &items,
                                     &queue, &PyTuple_Type, &fields, &PySet_Type, &known_keys, &kind,
                                     &accepted)) {
        return -1;
    }
    return bind_call((MetricCall *)op, fallback, items, queue, fields, known_keys, kind, accepted, NULL,
                     metrics_call_vectorcall);
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
        PyErr_Format(PyExc_TypeError, "%s was not initialised", Py_TYPE(op)->tp_name);
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
    if (self->limit_view.obj != NULL) {
        PyBuffer_Release(&self->limit_view);
    }
    self->append_function = NULL;
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
    self->append_function = NULL;
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
        return PyUnicode_FromFormat("<%s (not initialised)>", Py_TYPE(op)->tp_name);
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

static PyTypeObject MetricsCallType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "contexta.capture._scopes._metric_call.MetricsCall",
    .tp_basicsize = sizeof(MetricCall),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(MetricCall, vectorcall),
    .tp_call = metric_call_tp_call,
    .tp_new = metric_call_new,
    .tp_init = metrics_call_init,
    .tp_dealloc = metric_call_dealloc,
    .tp_traverse = metric_call_traverse,
    .tp_clear = metric_call_clear,
    .tp_repr = metric_call_repr,
    .tp_methods = metric_call_methods,
    .tp_getset = metric_call_getset,
};

/*
 * An awaitable already done: `await` on it gives `value` at once. What the async facade's compiled
 * `metric()` returns for the call it queued itself, in place of a coroutine (whose frame would cost
 * more than the call). It answers the coroutine protocol (`send`, `throw`, `close`), so a task can be
 * made of it, and it holds no state, so one instance serves every call.
 */
typedef struct {
    PyObject_HEAD
    PyObject *value;
} Completed;

/* The StopIteration that returns `value` (a tuple or an exception is wrapped, not unpacked). */
static void
stop_with(PyObject *value)
{
    PyObject *stop = PyObject_CallOneArg(PyExc_StopIteration, value);
    if (stop != NULL) {
        PyErr_SetObject(PyExc_StopIteration, stop);
        Py_DECREF(stop);
    }
}

static PyObject *
completed_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"value", NULL};
    PyObject *value;
    Completed *self;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:Completed", keywords, &value)) {
        return NULL;
    }
    self = (Completed *)type->tp_alloc(type, 0);
    if (self != NULL) {
        self->value = Py_NewRef(value);
    }
    return (PyObject *)self;
}

static int
completed_traverse(PyObject *op, visitproc visit, void *arg)
{
    Py_VISIT(((Completed *)op)->value);
    return 0;
}

static int
completed_clear(PyObject *op)
{
    Py_CLEAR(((Completed *)op)->value);
    return 0;
}

static void
completed_dealloc(PyObject *op)
{
    PyObject_GC_UnTrack(op);
    (void)completed_clear(op);
    Py_TYPE(op)->tp_free(op);
}

static PyObject *
completed_value(PyObject *op)
{
    PyObject *value = ((Completed *)op)->value;
    return value == NULL ? Py_None : value;
}

/* `await`: the awaitable is its own iterator. */
static PyObject *
completed_await(PyObject *op)
{
    return Py_NewRef(op);
}

/* How `await` (PyIter_Send) and an asyncio task take the result: no StopIteration is made. */
static PySendResult
completed_am_send(PyObject *op, PyObject *Py_UNUSED(arg), PyObject **result)
{
    *result = Py_NewRef(completed_value(op));
    return PYGEN_RETURN;
}

static PyObject *
completed_iternext(PyObject *op)
{
    stop_with(completed_value(op));
    return NULL;
}

static PyObject *
completed_send(PyObject *op, PyObject *Py_UNUSED(arg))
{
    stop_with(completed_value(op));
    return NULL;
}

/* `throw(error)`, as a coroutine that has finished raises it (the older three-argument form too). */
static PyObject *
completed_throw(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *type, *value = NULL, *traceback = NULL;
    if (!_PyArg_CheckPositional("throw", nargs, 1, 3)) {
        return NULL;
    }
    type = args[0];
    if (nargs > 1 && args[1] != Py_None) {
        value = args[1];
    }
    if (nargs > 2 && args[2] != Py_None) {
        traceback = args[2];
    }
    if (PyExceptionInstance_Check(type)) {
        if (value != NULL) {
            PyErr_SetString(PyExc_TypeError, "instance exception may not have a separate value");
            return NULL;
        }
        if (traceback != NULL && PyException_SetTraceback(type, traceback) < 0) {
            return NULL;
        }
        PyErr_SetObject((PyObject *)Py_TYPE(type), type);
        return NULL;
    }
    if (PyExceptionClass_Check(type)) {
        PyErr_SetObject(type, value);
        return NULL;
    }
    PyErr_Format(PyExc_TypeError, "exceptions must be classes or instances deriving from BaseException, not %s",
                 Py_TYPE(type)->tp_name);
    return NULL;
}

static PyObject *
completed_close(PyObject *Py_UNUSED(op), PyObject *Py_UNUSED(ignored))
{
    Py_RETURN_NONE;
}

static PyObject *
completed_repr(PyObject *op)
{
    return PyUnicode_FromFormat("<completed %R>", completed_value(op));
}

static PyMethodDef completed_methods[] = {
    {"send", completed_send, METH_O, "Finish at once: StopIteration carries the value."},
    {"throw", (PyCFunction)(void (*)(void))completed_throw, METH_FASTCALL, "Raise the error given."},
    {"close", completed_close, METH_NOARGS, "Nothing to close: already done."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef completed_members[] = {
    {"value", T_OBJECT, offsetof(Completed, value), READONLY, "what `await` gives"},
    {NULL, 0, 0, 0, NULL},
};

static PyAsyncMethods completed_as_async = {
    .am_await = completed_await,
    .am_send = completed_am_send,
};

static PyTypeObject CompletedType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "contexta.capture._scopes._metric_call.Completed",
    .tp_basicsize = sizeof(Completed),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "An awaitable already done: `await` gives `value` at once.",
    .tp_as_async = &completed_as_async,
    .tp_new = completed_new,
    .tp_dealloc = completed_dealloc,
    .tp_traverse = completed_traverse,
    .tp_clear = completed_clear,
    .tp_repr = completed_repr,
    .tp_iternext = completed_iternext,
    .tp_methods = completed_methods,
    .tp_members = completed_members,
};

static struct PyModuleDef metric_call_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "contexta.capture._scopes._metric_call",
    .m_doc = "The compiled fast paths of Scope.metric() and Scope.metrics(); the Python methods are the reference.",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__metric_call(void)
{
    PyObject *module;
    str_step = PyUnicode_InternFromString("step");
    str_limit = PyUnicode_InternFromString("limit");
    str_limit_cell = PyUnicode_InternFromString("limit_cell");
    if (str_step == NULL || str_limit == NULL || str_limit_cell == NULL || PyType_Ready(&MetricCallType) < 0 ||
        PyType_Ready(&MetricsCallType) < 0 || PyType_Ready(&CompletedType) < 0) {
        return NULL;
    }
    module = PyModule_Create(&metric_call_module);
    if (module == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(module, "MetricCall", (PyObject *)&MetricCallType) < 0 ||
        PyModule_AddObjectRef(module, "MetricsCall", (PyObject *)&MetricsCallType) < 0 ||
        PyModule_AddObjectRef(module, "Completed", (PyObject *)&CompletedType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
