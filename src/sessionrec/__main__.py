"""``python -m sessionrec ...``: the same command line as the ``sessionrec`` script."""

import sys

from sessionrec.cli import main

if __name__ == "__main__":
    sys.exit(main())
