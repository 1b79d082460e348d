"""``python -m node``: the headless command line (child processes, scripts, servers)."""

from node.cli import main

raise SystemExit(main())
