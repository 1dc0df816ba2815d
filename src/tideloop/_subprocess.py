"""Subprocess transports: being written for issue 5."""


class SubprocessMixin:
    pass
