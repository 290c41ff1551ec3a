"""`python -m curbside …` is the `curbside` command."""

from curbside.cli import main

raise SystemExit(main())
