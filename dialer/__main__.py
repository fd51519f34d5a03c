"""``python -m dialer`` = the ``dialer`` command."""

import sys

from dialer.cli import main

sys.exit(main())
