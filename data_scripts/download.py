#!/usr/bin/env python
"""Download the course's datasets from the command line: the front end of ``i2icourse.data.fetch``.

    python data_scripts/download.py --list                     # names, sizes, licences
    python data_scripts/download.py facades horse2zebra        # into $I2I_DATA or ~/.cache/i2icourse
    python data_scripts/download.py Set5 --mirror ../shared/data
    python data_scripts/download.py maps --root /content/data --keep-archive

Prints each dataset's folder; exits with status 1, after the reason and what to do, if any failed.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("i2icourse") is None:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from i2icourse.data import DataError, catalogue, fetch  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Fetch each named dataset; 0 when all are there, 1 otherwise."""
    parser = argparse.ArgumentParser(description="Download, verify and unpack course datasets.")
    parser.add_argument("names", nargs="*", metavar="NAME", help="registered dataset names (see --list)")
    parser.add_argument("--list", action="store_true", help="show the registered datasets and exit")
    parser.add_argument("--root", help="cache folder (default: $I2I_DATA, else ~/.cache/i2icourse)")
    parser.add_argument("--mirror", help="a pre-staged data folder to use instead of the internet "
                                         "(default: $I2I_DATA_MIRROR)")
    parser.add_argument("--keep-archive", action="store_true", help="keep the downloaded archive after unpacking")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if args.list:
        print(catalogue())
        return 0
    if not args.names:
        parser.error("name at least one dataset, or use --list")
    status = 0
    for name in args.names:
        try:
            path = fetch(name, args.root, mirror=args.mirror, progress=not args.quiet,
                         keep_archive=args.keep_archive)
        except (DataError, LookupError) as e:  # the message says what failed and what to do
            print(f"{name}: failed\n{e}", file=sys.stderr)
            status = 1
            continue
        except OSError as e:  # the disk: full, read-only, no permission
            print(f"{name}: failed\n{type(e).__name__}: {e}", file=sys.stderr)
            status = 1
            continue
        print(f"{name}: {path}")
    return status


if __name__ == "__main__":
    sys.exit(main())
