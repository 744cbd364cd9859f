"""``python -m commandexec``: the same as the ``commandexec`` command."""

from .cli import main

raise SystemExit(main())
