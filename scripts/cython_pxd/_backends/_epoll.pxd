# Augmenting declarations for tideloop/_backends/_epoll.py.
from tideloop._backends._base cimport Backend

cdef class EpollBackend(Backend):
    cdef public object _epoll
