"""The stack's command line as `python3 -m stackctl` (from scripts/) or `-m scripts.stackctl`."""

import sys

from .cli import main

sys.exit(main())
