# Augmenting declarations for tideloop/_handles.py (Cython pure-Python mode).
# Handle/TimerHandle stay Python classes (subclasses of asyncio's).

cdef class TimerHeap:
    cdef public list heap
    cdef public Py_ssize_t seq
    cdef public Py_ssize_t cancelled
    cdef public Py_ssize_t cancelled_total
    cpdef push(self, timer)
    cpdef on_cancel(self, timer)
    cpdef prune(self)
    cpdef pop_due(self, double end_time, append)
    cpdef clear(self)
