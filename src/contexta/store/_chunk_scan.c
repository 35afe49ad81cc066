/* One-pass scans of a metric chunk's columns, for the store's chunk encoder and summary.

   The store lane encodes each batch's series as chunks while the caller's training loop runs in the
   same process. In Python's C-level helpers the three scans below were each one long call holding the
   GIL (a 16,384-point series: the progression check 0.36 ms building the expected array with
   struct.pack, the order check ~0.4 ms through float conversion and sorted(), the block extremes 33
   min/max pairs): a caller waited for all of them at once. Here each is one pass over the machine
   numbers, and `_chunk_codec.py` / `_chunk_summary.py` keep the Python versions as the reference
   (used when this is not built; tests hold the two equal).

   progression(column) -> (start, stride) | None    an arithmetic progression of two or more integers
   non_decreasing(column) -> bool                   the integers never decrease
   block_extremes(values, block, finite) -> (mins, maxs, nans)
       per block of `block` values ('d' or 'q'), the smallest and largest as the native bytes of the
       same typecode, and one byte per block, 1 when it holds a NaN. With `finite` false a block's NaNs
       are left out of its extremes (a block of NaN only gets NaN for both); like min() and max(), the
       first of equal values is kept (so -0.0 and 0.0 keep their order).
   The first two take an array.array of typecode 'q' or 'i', block_extremes one of 'd' or 'q'; each
   raises TypeError for anything else, which the Python side never passes.
*/
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <string.h>

/* The array's buffer, of one of `typecodes` (each of them "q", "d" or "i"); -1 with TypeError
   otherwise. */
static int
column_buffer(PyObject *column, Py_buffer *view, const char *typecodes)
{
    if (PyObject_GetBuffer(column, view, PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) < 0) {
        return -1;
    }
    if (view->format == NULL || strlen(view->format) != 1 || strchr(typecodes, view->format[0]) == NULL ||
        view->itemsize != (view->format[0] == 'i' ? (Py_ssize_t)sizeof(int) : 8)) {
        PyBuffer_Release(view);
        PyErr_Format(PyExc_TypeError, "expected an array of typecode %s", typecodes);
        return -1;
    }
    return 0;
}

/* Item `index` of an int array ('q' or 'i') as a 64-bit integer. */
static inline long long
integer_at(const Py_buffer *view, Py_ssize_t index)
{
    return view->itemsize == 8 ? ((const long long *)view->buf)[index] : ((const int *)view->buf)[index];
}

static PyObject *
progression(PyObject *module, PyObject *column)
{
    Py_buffer view;
    Py_ssize_t count, index;
    __int128 stride;
    PyObject *result;

    if (column_buffer(column, &view, "qi") < 0) {
        return NULL;
    }
    count = view.len / view.itemsize;
    result = Py_None;
    if (count >= 2) {
        stride = (__int128)integer_at(&view, 1) - (__int128)integer_at(&view, 0);
        if (stride >= (__int128)LLONG_MIN && stride <= (__int128)LLONG_MAX) {
            for (index = 2; index < count; index++) {
                if ((__int128)integer_at(&view, index) - (__int128)integer_at(&view, index - 1) != stride) {
                    break;
                }
            }
            if (index == count) {
                result = Py_BuildValue("(LL)", integer_at(&view, 0), (long long)stride);
            }
        }
    }
    PyBuffer_Release(&view);
    return result == Py_None ? Py_NewRef(Py_None) : result;
}

static PyObject *
non_decreasing(PyObject *module, PyObject *column)
{
    Py_buffer view;
    Py_ssize_t count, index;

    if (column_buffer(column, &view, "qi") < 0) {
        return NULL;
    }
    count = view.len / view.itemsize;
    for (index = 1; index < count && integer_at(&view, index - 1) <= integer_at(&view, index); index++) {
    }
    PyBuffer_Release(&view);
    return PyBool_FromLong(index >= count);
}

static PyObject *
block_extremes(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer view;
    Py_ssize_t block, count, blocks, number, first, index;
    int finite, is_double;
    char *mins = NULL, *maxs = NULL, *nans = NULL;
    PyObject *result = NULL;

    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "block_extremes(values, block, finite)");
        return NULL;
    }
    block = PyLong_AsSsize_t(args[1]);
    if (block == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (block < 1) {
        PyErr_SetString(PyExc_ValueError, "block must be positive");
        return NULL;
    }
    finite = PyObject_IsTrue(args[2]);
    if (finite < 0 || column_buffer(args[0], &view, "dq") < 0) {
        return NULL;
    }
    is_double = view.format[0] == 'd';
    count = view.len / 8;
    blocks = (count + block - 1) / block;
    mins = PyMem_Malloc(blocks * 8 + 1);
    maxs = PyMem_Malloc(blocks * 8 + 1);
    nans = PyMem_Calloc(blocks + 1, 1);
    if (mins == NULL || maxs == NULL || nans == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (number = 0, first = 0; first < count; number++, first += block) {
        Py_ssize_t last = first + block < count ? first + block : count;
        if (is_double) {
            const double *values = (const double *)view.buf;
            double low = NAN, high = NAN;
            int seen = 0;
            for (index = first; index < last; index++) {
                double value = values[index];
                if (!finite && isnan(value)) {
                    nans[number] = 1;
                    continue;
                }
                if (!seen) {
                    low = high = value;
                    seen = 1;
                }
                else {
                    if (value < low) {
                        low = value;
                    }
                    if (value > high) {
                        high = value;
                    }
                }
            }
            memcpy(mins + number * 8, &low, 8);
            memcpy(maxs + number * 8, &high, 8);
        }
        else {
            const long long *values = (const long long *)view.buf;
            long long low = values[first], high = values[first];
            for (index = first + 1; index < last; index++) {
                if (values[index] < low) {
                    low = values[index];
                }
                if (values[index] > high) {
                    high = values[index];
                }
            }
            memcpy(mins + number * 8, &low, 8);
            memcpy(maxs + number * 8, &high, 8);
        }
    }
    result = Py_BuildValue("(y#y#y#)", mins, blocks * 8, maxs, blocks * 8, nans, blocks);
done:
    PyMem_Free(mins);
    PyMem_Free(maxs);
    PyMem_Free(nans);
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef chunk_scan_methods[] = {
    {"progression", progression, METH_O,
     "(start, stride) when the int64 array is an arithmetic progression of two or more, else None."},
    {"non_decreasing", non_decreasing, METH_O, "Whether the int64 array never decreases."},
    {"block_extremes", (PyCFunction)(void (*)(void))block_extremes, METH_FASTCALL,
     "(mins, maxs, nans) of each block of a 'd' or 'q' array, as native bytes (see the module doc)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef chunk_scan_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "contexta.store._chunk_scan",
    .m_doc = "One-pass scans of a metric chunk's columns (see _chunk_scan.c).",
    .m_size = 0,
    .m_methods = chunk_scan_methods,
};

PyMODINIT_FUNC
PyInit__chunk_scan(void)
{
    return PyModule_Create(&chunk_scan_module);
}
