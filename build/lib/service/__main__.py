"""`python -m service` is the same as the `citeqa` command."""

from service.cli import main

raise SystemExit(main())
