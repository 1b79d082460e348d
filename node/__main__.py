"""``python -m node`` is the same as the ``rnet`` command."""

from node.cli import main

raise SystemExit(main())
