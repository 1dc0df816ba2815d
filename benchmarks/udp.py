#!/usr/bin/env python3
"""UDP echo benchmark: tideloop vs stock asyncio vs uvloop.

A thin wrapper over ``python -m tideloop bench --group udp``; the benchmark
code lives in ``tideloop._bench.udp`` so that it ships with the package.

    python benchmarks/udp.py [--quick | --full] [--json] [--loops tideloop,asyncio,uvloop]
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    from tideloop._bench.udp import main
except ImportError:  # running from a source checkout without an install
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    from tideloop._bench.udp import main

if __name__ == "__main__":
    sys.exit(main())
