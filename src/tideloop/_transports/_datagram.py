"""Datagram endpoints (UDP, Unix datagram): being written for issue 5."""


class DatagramMixin:
    pass
