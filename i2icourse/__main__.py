"""``python -m i2icourse``: the command line of :mod:`i2icourse.cli` (``train`` and ``apply``)."""
from i2icourse.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
