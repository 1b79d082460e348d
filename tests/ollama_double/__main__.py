"""``python -m tests.ollama_double``: serve the double as a process (see :mod:`.process`)."""

import sys

from tests.ollama_double.process import main

sys.exit(main())
