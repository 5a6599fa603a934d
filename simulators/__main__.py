"""``python -m simulators`` is ``cabinet-sim``."""

from .cli import main

raise SystemExit(main())
