"""``python -m server`` is ``cabinet-server``."""

from server.cli import main

raise SystemExit(main())
