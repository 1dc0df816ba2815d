"""The transports: stream (TCP and Unix, plain and over a socket subclass),
datagram, read and write pipes, subprocess, and TLS (an SSLProtocol on a
stream transport). They reach the loop only through ``LoopIO`` (``_io``) and
the loop's public API; see docs/architecture.md."""
