"""The `qc` command: the command line of the Rust crate, run in this process."""

import signal
import sys

from qc import _qc


def main() -> None:
    # Ctrl-C ends the command as it ends the native binary (exit by SIGINT), instead of waiting
    # for the Rust work to return to Python.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(_qc.cli_main(sys.argv[1:]))


if __name__ == "__main__":
    main()
