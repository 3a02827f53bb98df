"""``python -m carepath`` runs the ``carepath`` command."""

import sys

from .cli import main

sys.exit(main())
