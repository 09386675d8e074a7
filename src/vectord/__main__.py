"""`python -m vectord ...` is the `vectord` command."""

from vectord.server.cli import main

raise SystemExit(main())
