/* Queued items read in one pass: a batch's plain metric tuples split into columns (for the store
   sink and the capture log), and the writer's counts of records and barriers.

   The store lane groups a batch's metric points by series and appends them to its columns. Done with
   Python's C-level helpers that is about fifteen passes over the batch (a map per field, a count per
   check), and under load the lane held the GIL for ~480 ns per record doing it: time the caller's
   loop waits for. This does the same checks and the same split in one pass.

   plain_metric_columns(items, start, stop) looks at items[start:stop]. Every one must be a METRIC
   tuple (kind, t_ns, context, key, value, unit, step, aggregation_scope, tags) of the common kind:
   a float value, no unit, the "step" scope, no tags, a step that is None or an int. Then it returns
   (run_starts, observed, values, steps, all_finite, missing_steps): the offsets (from start) where
   the (context, key) pair changes, the three columns as the bytes of native int64 / double / int64
   arrays (a missing step is NO_STEP, -1), whether every value is finite, and how many steps are
   missing (the capture log needs both to pick its line templates). Anything else returns None, and
   the caller's Python path (the reference) handles the batch. The capture log uses it too.
*/
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>

#define METRIC_KIND 1
#define METRIC_SIZE 9
#define NO_STEP (-1)

static PyObject *str_step;

/* The native bytes of `count` 8-byte numbers in `buffer`, as a bytes object (steals nothing). */
static PyObject *
as_bytes(const void *buffer, Py_ssize_t count)
{
    return PyBytes_FromStringAndSize((const char *)buffer, count * 8);
}

static PyObject *
plain_metric_columns(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *items, *run_starts = NULL, *result = NULL, *offset;
    Py_ssize_t start, stop, length, index;
    long long *observed = NULL, *steps = NULL;
    double *values = NULL;
    PyObject *previous_context = NULL, *previous_key = NULL;
    int all_finite = 1;
    Py_ssize_t missing_steps = 0;

    if (nargs != 3 || !PyList_CheckExact(args[0])) {
        PyErr_SetString(PyExc_TypeError, "plain_metric_columns(items: list, start: int, stop: int)");
        return NULL;
    }
    items = args[0];
    start = PyLong_AsSsize_t(args[1]);
    stop = PyLong_AsSsize_t(args[2]);
    if ((start == -1 || stop == -1) && PyErr_Occurred()) {
        return NULL;
    }
    if (start < 0 || stop > PyList_GET_SIZE(items) || start >= stop) {
        Py_RETURN_NONE;
    }
    length = stop - start;
    observed = PyMem_Malloc(length * sizeof(long long));
    steps = PyMem_Malloc(length * sizeof(long long));
    values = PyMem_Malloc(length * sizeof(double));
    run_starts = PyList_New(0);
    if (observed == NULL || steps == NULL || values == NULL || run_starts == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (index = 0; index < length; index++) {
        PyObject *item = PyList_GET_ITEM(items, start + index);
        PyObject *kind, *t_ns, *context, *key, *value, *step, *scope;
        if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != METRIC_SIZE) {
            goto not_plain;
        }
        kind = PyTuple_GET_ITEM(item, 0);
        t_ns = PyTuple_GET_ITEM(item, 1);
        context = PyTuple_GET_ITEM(item, 2);
        key = PyTuple_GET_ITEM(item, 3);
        value = PyTuple_GET_ITEM(item, 4);
        step = PyTuple_GET_ITEM(item, 6);
        scope = PyTuple_GET_ITEM(item, 7);
        if (!PyLong_CheckExact(kind) || PyLong_AsLong(kind) != METRIC_KIND || !PyLong_CheckExact(t_ns) ||
            !PyUnicode_CheckExact(key) || !PyFloat_CheckExact(value) || PyTuple_GET_ITEM(item, 5) != Py_None ||
            PyTuple_GET_ITEM(item, 8) != Py_None || !PyUnicode_CheckExact(scope)) {
            goto not_plain;
        }
        if (scope != str_step && PyUnicode_Compare(scope, str_step) != 0) {
            goto not_plain;
        }
        observed[index] = PyLong_AsLongLong(t_ns);
        if (observed[index] == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            goto not_plain;
        }
        values[index] = PyFloat_AS_DOUBLE(value);
        if (!isfinite(values[index])) {
            all_finite = 0;
        }
        if (step == Py_None) {
            steps[index] = NO_STEP;
            missing_steps++;
        }
        else if (PyLong_CheckExact(step)) {
            steps[index] = PyLong_AsLongLong(step);
            if (steps[index] == -1 && PyErr_Occurred()) {
                PyErr_Clear();
                goto not_plain;
            }
        }
        else {
            goto not_plain;
        }
        if (index == 0 || context != previous_context ||
            (key != previous_key && PyUnicode_Compare(key, previous_key) != 0)) {
            if (PyErr_Occurred()) {
                goto done;
            }
            offset = PyLong_FromSsize_t(index);
            if (offset == NULL || PyList_Append(run_starts, offset) < 0) {
                Py_XDECREF(offset);
                goto done;
            }
            Py_DECREF(offset);
        }
        previous_context = context;
        previous_key = key;
    }
    {
        PyObject *observed_bytes = as_bytes(observed, length);
        PyObject *values_bytes = as_bytes(values, length);
        PyObject *steps_bytes = as_bytes(steps, length);
        if (observed_bytes != NULL && values_bytes != NULL && steps_bytes != NULL) {
            result = Py_BuildValue("(OOOOOn)", run_starts, observed_bytes, values_bytes, steps_bytes,
                                   all_finite ? Py_True : Py_False, missing_steps);
        }
        Py_XDECREF(observed_bytes);
        Py_XDECREF(values_bytes);
        Py_XDECREF(steps_bytes);
    }
    goto done;

not_plain:
    result = Py_NewRef(Py_None);
done:
    PyMem_Free(observed);
    PyMem_Free(steps);
    PyMem_Free(values);
    Py_XDECREF(run_starts);
    return result;
}

/* The kind of a queued item (its first field), or -1 when it is not a tuple led by a small int. */
static long
item_kind(PyObject *item)
{
    PyObject *kind;
    if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) == 0) {
        return -1;
    }
    kind = PyTuple_GET_ITEM(item, 0);
    if (!PyLong_CheckExact(kind)) {
        return -1;
    }
    return PyLong_AsLong(kind);
}

/* The writer's take is the first to read the tuples it popped (pop_left moves only pointers), each
   one a cache miss: queued_facts asks the memory for the tuples a few places ahead while it reads
   this one. */
#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(address) __builtin_prefetch((address), 0, 3)
#else
#define PREFETCH(address) ((void)0)
#endif
#define PREFETCH_AHEAD 8

#define METRICS_KIND 2
#define BARRIER_KIND 7

/* record_count(items): `_items.record_count` in one pass (the writer's take and its cycle each ran
   a map over the batch for it): one record per item, one per key of a metrics() item, none for a
   flush barrier. None when an item is not a queued tuple the count can read (the Python reference
   decides then). */
static PyObject *
record_count(PyObject *module, PyObject *items)
{
    Py_ssize_t index, count, records = 0;
    if (!PyList_CheckExact(items)) {
        Py_RETURN_NONE;
    }
    count = PyList_GET_SIZE(items);
    for (index = 0; index < count; index++) {
        PyObject *item = PyList_GET_ITEM(items, index);
        long kind = item_kind(item);
        if (kind == -1) {
            if (PyErr_Occurred()) {
                PyErr_Clear();
            }
            Py_RETURN_NONE;
        }
        if (kind == METRICS_KIND) {
            PyObject *pairs;
            Py_ssize_t size;
            if (PyTuple_GET_SIZE(item) < 4) {
                Py_RETURN_NONE;
            }
            pairs = PyTuple_GET_ITEM(item, 3);
            size = PyObject_Length(pairs);
            if (size < 0) {
                PyErr_Clear();
                Py_RETURN_NONE;
            }
            records += size;
        }
        else if (kind != BARRIER_KIND) {
            records += 1;
        }
    }
    return PyLong_FromSsize_t(records);
}

/* queued_facts(items): (record_count(items), has_barrier(items), only_metrics(items), others) in one
   pass, where `others` lists the positions of the items that are not single metrics when they are at
   most an eighth of the items (None otherwise), or None when an item is not a queued tuple the count
   can read (then the writer asks the functions one by one). The writer asked the three of every
   16,384-item batch it took and built a batch with a few other items item by item: in each of those
   passes every tuple was a cache miss, three quarters of the writer's time with the GIL (perf,
   docs/benchmarks.md). */
static PyObject *
queued_facts(PyObject *module, PyObject *items)
{
    Py_ssize_t index, count, records = 0, most_others;
    int barrier = 0;
    PyObject *others, *result;
    if (!PyList_CheckExact(items)) {
        PyErr_SetString(PyExc_TypeError, "queued_facts(items: list)");
        return NULL;
    }
    count = PyList_GET_SIZE(items);
    most_others = count / 8;
    if ((others = PyList_New(0)) == NULL) {
        return NULL;
    }
    for (index = 0; index < count; index++) {
        PyObject *item = PyList_GET_ITEM(items, index);
        long kind;
        if (index + PREFETCH_AHEAD < count) {
            PREFETCH(PyList_GET_ITEM(items, index + PREFETCH_AHEAD));
        }
        kind = item_kind(item);
        if (kind == METRIC_KIND) {
            records += 1;
            continue;
        }
        if (kind == -1) {
            PyErr_Clear();
            Py_DECREF(others);
            Py_RETURN_NONE;
        }
        if (others != Py_None) {
            if (PyList_GET_SIZE(others) >= most_others) {
                Py_SETREF(others, Py_NewRef(Py_None));
            }
            else {
                PyObject *position = PyLong_FromSsize_t(index);
                if (position == NULL || PyList_Append(others, position) < 0) {
                    Py_XDECREF(position);
                    Py_DECREF(others);
                    return NULL;
                }
                Py_DECREF(position);
            }
        }
        if (kind == BARRIER_KIND) {
            barrier = 1;
        }
        else if (kind == METRICS_KIND) {
            Py_ssize_t size;
            if (PyTuple_GET_SIZE(item) < 4 || (size = PyObject_Length(PyTuple_GET_ITEM(item, 3))) < 0) {
                PyErr_Clear();
                Py_DECREF(others);
                Py_RETURN_NONE;
            }
            records += size;
        }
        else {
            records += 1;
        }
    }
    result = Py_BuildValue("(nOOO)", records, barrier ? Py_True : Py_False,
                           (others != Py_None && PyList_GET_SIZE(others) == 0) ? Py_True : Py_False, others);
    Py_DECREF(others);
    return result;
}

/* has_barrier(items): whether a flush barrier is among the queued items (the writer's common cycle
   has none), in one pass. */
static PyObject *
has_barrier(PyObject *module, PyObject *items)
{
    Py_ssize_t index, count;
    if (!PyList_CheckExact(items)) {
        PyErr_SetString(PyExc_TypeError, "has_barrier(items: list)");
        return NULL;
    }
    count = PyList_GET_SIZE(items);
    for (index = 0; index < count; index++) {
        long kind = item_kind(PyList_GET_ITEM(items, index));
        if (kind == -1 && PyErr_Occurred()) {
            return NULL;
        }
        if (kind == BARRIER_KIND) {
            Py_RETURN_TRUE;
        }
    }
    Py_RETURN_FALSE;
}

/* only_tuples(items): whether every item is still a queued tuple (the writer built no entry among
   them), in one pass: the writer, the capture log and the store sink each ask it of every batch. */
static PyObject *
only_tuples(PyObject *module, PyObject *items)
{
    Py_ssize_t index, count;
    if (!PyList_CheckExact(items)) {
        PyErr_SetString(PyExc_TypeError, "only_tuples(items: list)");
        return NULL;
    }
    count = PyList_GET_SIZE(items);
    for (index = 0; index < count; index++) {
        if (!PyTuple_CheckExact(PyList_GET_ITEM(items, index))) {
            Py_RETURN_FALSE;
        }
    }
    Py_RETURN_TRUE;
}

/* only_metrics(items): whether every item is a queued METRIC tuple (the writer's common batch, passed
   through unbuilt), in one pass instead of a map and a count over the batch. */
static PyObject *
only_metrics(PyObject *module, PyObject *items)
{
    Py_ssize_t index, count;
    if (!PyList_CheckExact(items)) {
        PyErr_SetString(PyExc_TypeError, "only_metrics(items: list)");
        return NULL;
    }
    count = PyList_GET_SIZE(items);
    for (index = 0; index < count; index++) {
        long kind = item_kind(PyList_GET_ITEM(items, index));
        if (kind != METRIC_KIND) {
            if (kind == -1 && PyErr_Occurred()) {
                PyErr_Clear();
            }
            Py_RETURN_FALSE;
        }
    }
    Py_RETURN_TRUE;
}

/* pop_left(popleft, count): a list of `count` items taken with `popleft` (a deque's bound popleft)
   in one C loop, where `list(islice(iter(popleft, None), count))` went through two iterator layers
   per item. A builtin method taking no arguments (deque.popleft) is called through its C function,
   without the call protocol's layers: the writer takes 16,384 items a batch, holding the GIL the
   capturing threads wait for (0.6 ms a batch under load, 32 ns an item, before). Like the islice,
   raises what `popleft` raises (IndexError once the deque is empty: the writer, the only thread that
   pops, asks for no more than are queued). */
static PyObject *
pop_left(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *popleft, *taken, *item, *self = NULL;
    PyCFunction direct = NULL;
    Py_ssize_t count, index;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "pop_left(popleft, count)");
        return NULL;
    }
    popleft = args[0];
    count = PyLong_AsSsize_t(args[1]);
    if (count == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (count < 0) {
        count = 0;
    }
    if (PyCFunction_CheckExact(popleft) && PyCFunction_GET_FLAGS(popleft) == METH_NOARGS) {
        direct = PyCFunction_GET_FUNCTION(popleft);
        self = PyCFunction_GET_SELF(popleft);
    }
    taken = PyList_New(count); /* filled in order; a slot not yet filled is NULL, which dealloc skips */
    if (taken == NULL) {
        return NULL;
    }
    /* Out of the garbage collector's sight until filled: `popleft` may run Python code (any callable,
       or a collection it triggers), and gc.get_objects() would hand it this list with NULL slots,
       which reading crashes the interpreter on. Nothing else can reach it meanwhile. */
    PyObject_GC_UnTrack(taken);
    for (index = 0; index < count; index++) {
        item = direct != NULL ? direct(self, NULL) : PyObject_CallNoArgs(popleft);
        if (item == NULL) { /* an empty deque's IndexError too: the caller knows `count` are there */
            Py_DECREF(taken);
            return NULL;
        }
        PyList_SET_ITEM(taken, index, item);
    }
    PyObject_GC_Track(taken);
    return taken;
}

static PyMethodDef metric_columns_functions[] = {
    {"only_metrics", only_metrics, METH_O, "Whether every queued item is a METRIC tuple."},
    {"pop_left", (PyCFunction)(void (*)(void))pop_left, METH_FASTCALL,
     "Up to `count` items taken with `popleft`, in order."},
    {"only_tuples", only_tuples, METH_O, "Whether every queued item is still a tuple."},
    {"record_count", record_count, METH_O, "How many records queued items become, or None if one is not readable."},
    {"has_barrier", has_barrier, METH_O, "Whether a flush barrier is among the queued items."},
    {"queued_facts", queued_facts, METH_O, "(record_count, has_barrier, only_metrics, others) of queued items in one pass."},
    {"plain_metric_columns", (PyCFunction)(void (*)(void))plain_metric_columns, METH_FASTCALL,
     "(run_starts, observed, values, steps, all_finite, missing_steps) of items[start:stop] if all are plain METRIC tuples, else None."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef metric_columns_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "contexta.capture._metric_columns",
    .m_doc = "A batch's plain metric tuples split into the store's columns in one pass.",
    .m_size = -1,
    .m_methods = metric_columns_functions,
};

PyMODINIT_FUNC
PyInit__metric_columns(void)
{
    str_step = PyUnicode_InternFromString("step");
    if (str_step == NULL) {
        return NULL;
    }
    return PyModule_Create(&metric_columns_module);
}
