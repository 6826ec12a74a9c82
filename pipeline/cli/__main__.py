"""``python -m pipeline.cli``."""

from pipeline.cli import main

raise SystemExit(main())
