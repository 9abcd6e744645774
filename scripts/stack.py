#!/usr/bin/env python3
"""Entry point of the native local stack: `python3 scripts/stack.py <command>` (`--help`).

The code is the package `scripts/stackctl/` (its docstring has the map); docs/operations.md
says how to use it. Standard library only: it runs before `.venv` exists.
"""

import sys
from pathlib import Path

# Run as a file, Python puts scripts/ on the path; the package is imported from the project root
# under its one name, `scripts.stackctl`, as the tests and mypy see it.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.stackctl.cli import main

if __name__ == "__main__":
    sys.exit(main())
