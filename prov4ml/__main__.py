"""``python -m prov4ml``: the ``prov4ml`` console command."""

from .cli import main

raise SystemExit(main())
