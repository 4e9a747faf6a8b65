"""``python -m prov4ml.analysis``."""

from .cli import main

raise SystemExit(main())
