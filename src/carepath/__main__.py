"""``python -m carepath`` runs the ``carepath`` command."""

import sys

from carepath.cli.app import main

sys.exit(main())
