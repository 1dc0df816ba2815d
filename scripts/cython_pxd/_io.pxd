# Augmenting declarations for tideloop/_io.py.
cimport tideloop._backends._base as _cbase

cdef class LoopIO:
    cdef public object loop
    cdef public object ready
    cdef public _cbase.Backend _backend
    cdef public bint running
    cdef public bytearray recv_buffer
    cdef public object recv_view
    cdef public list flush_queue
    cdef public object flush_soon
    cdef public object transports
    cdef public dict _fileobjs
    cdef public list _fd_released_callbacks
    cdef public object _tls_view
