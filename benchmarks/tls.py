#!/usr/bin/env python3
"""TLS benchmark (echo and handshakes): tideloop vs stock asyncio vs uvloop.

A thin wrapper over ``python -m tideloop bench --group tls``; the benchmark
code lives in ``tideloop._bench.tls`` so that it ships with the package.

    python benchmarks/tls.py [--loops tideloop,asyncio,uvloop] [--json]
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    from tideloop._bench.tls import main
except ImportError:  # running from a source checkout without an install
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    from tideloop._bench.tls import main

if __name__ == "__main__":
    sys.exit(main())
