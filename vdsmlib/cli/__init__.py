"""The command line: ``vdsm`` (:mod:`.main`), ``make build``'s entry (:mod:`.make`: the no-op
check, then papermill) and ``make soak`` (:mod:`.soak`). Each parses arguments, calls the
library, and maps errors to exit codes in one place."""

from vdsmlib.cli.main import main

__all__ = ["main"]
