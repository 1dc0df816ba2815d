"""``python -m benchmarks``: the benchmark suite, run from a checkout's root.

    python -m benchmarks [--group streams|micro|udp|tls|spawn] [--quick] [--json] [--loops LIST]

See ``_cli`` for the options and benchmarks/README.md for the method.
"""

from __future__ import annotations

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main())
