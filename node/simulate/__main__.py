"""``python -m node.simulate`` is ``rnet sim``."""

from node.simulate.cli import main

raise SystemExit(main())
