"""``python -m strom``: the same as the ``strom`` command."""

import sys

from strom.cli.main import main

sys.exit(main())
