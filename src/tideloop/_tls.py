"""TLS over any stream transport and start_tls: being written for issue 6."""


class TLSMixin:
    pass
