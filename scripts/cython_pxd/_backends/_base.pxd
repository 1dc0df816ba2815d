# Augmenting declarations for tideloop/_backends/_base.py.
cimport cython

cdef class Waker:
    cdef public bint pending
    cdef public int read_fd
    cdef public int write_fd

cdef class Backend:
    cdef public dict _readers
    cdef public dict _writers
    cdef public Waker _waker
    cdef public bint _closed
    cdef public Py_ssize_t _events

    @cython.locals(fd=int, mask=int)
    cpdef collect(self, list events, append)
    cdef _collect_other(self, int fd, int mask, append)
