"""The two errors every part of getting a dataset raises: :class:`DataError` and :class:`DataUnavailableError`.

The more precise ones build on them where they arise: :class:`~i2icourse.data.download.ChecksumError`
(wrong bytes) and :class:`~i2icourse.data.archives.UnsafeArchiveError` (an archive that is refused).
Each message says what failed and what to do next.
"""
from __future__ import annotations


class DataError(RuntimeError):
    """A dataset that could not be made available; the message says why and what to do."""


class DataUnavailableError(DataError):
    """The data cannot be reached from here: offline, gone, behind a login, or missing from the mirror."""
