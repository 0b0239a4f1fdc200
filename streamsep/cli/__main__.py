"""``python -m streamsep.cli``."""

import sys

from streamsep.cli import main

sys.exit(main())
