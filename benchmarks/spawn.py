#!/usr/bin/env python3
"""Subprocess spawn benchmark: tideloop vs stock asyncio vs uvloop.

A thin wrapper over ``python -m tideloop bench --group spawn``; the benchmark
code lives in ``tideloop._bench.spawn`` so that it ships with the package.

    python benchmarks/spawn.py [--quick] [--rounds N] [--loop LOOP ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    from tideloop._bench.spawn import main
except ImportError:  # running from a source checkout without an install
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    from tideloop._bench.spawn import main

if __name__ == "__main__":
    sys.exit(main())
