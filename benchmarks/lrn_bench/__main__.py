"""``python -m benchmarks.lrn_bench``: see ``cli.py``."""

from .cli import main

raise SystemExit(main())
