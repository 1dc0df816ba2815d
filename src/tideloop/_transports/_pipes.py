"""Read and write pipe transports: being written for issue 5."""


class PipesMixin:
    pass
