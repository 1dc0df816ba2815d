#!/usr/bin/env python3
"""Stream echo benchmark: tideloop vs stock asyncio vs uvloop.

A thin wrapper over ``python -m tideloop bench --group streams`` (the default
group); the benchmark code lives in ``tideloop._bench.streams`` so that it
ships with the package.

    python benchmarks/echo.py [--quick | --full] [--json] [--loops tideloop,asyncio,uvloop]
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    from tideloop._bench.streams import main
except ImportError:  # running from a source checkout without an install
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    from tideloop._bench.streams import main

if __name__ == "__main__":
    sys.exit(main())
