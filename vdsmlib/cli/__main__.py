"""``python -m vdsmlib.cli``: the same as the ``vdsm`` command."""

import sys

from vdsmlib.cli.main import main

sys.exit(main())
