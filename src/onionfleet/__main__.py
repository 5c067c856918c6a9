"""``python -m onionfleet`` runs the command line."""

import sys

from onionfleet.cli import main

sys.exit(main())
