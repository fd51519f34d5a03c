"""One exception tree for the whole package.

Every error a user can cause (bad config, bad input file, unreachable service) derives from
DialerError and carries a message fit to print as one line. The CLI prints ``str(exc)`` and exits
with a non-zero status instead of showing a traceback.
"""

from __future__ import annotations


class DialerError(Exception):
    """Base of every error the dialer raises on purpose."""


class ConfigError(DialerError):
    """A configuration file is missing or invalid.

    ``source`` names the file, ``line`` the 1-based line when known.
    """

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None) -> None:
        self.source = source
        self.line = line
        where = source or ""
        if source and line is not None:
            where = f"{source}:{line}"
        super().__init__(f"{where}: {message}" if where else message)


class InputError(DialerError):
    """User-supplied data (CSV, registry file, command payload) is malformed."""


class StorageError(DialerError):
    """The database is unreachable or its schema is not what this version expects."""


class StorageUnavailable(StorageError):
    """The database cannot be reached right now (refused, restarting, connection lost): worth
    retrying; nothing of the failed transaction was committed."""


class StorageConflict(StorageError):
    """A unique rule of the schema refused the write (e.g. a second live call to one number)."""


class AmiError(DialerError):
    """Asterisk Manager Interface failure."""


class AmiAuthError(AmiError):
    """Asterisk refused the AMI credentials."""


class AmiTimeout(AmiError):
    """An AMI action got no reply before its deadline."""


class AmiActionError(AmiError):
    """Asterisk answered an action with ``Response: Error``."""


class AudioSocketError(DialerError):
    """A broken AudioSocket stream (unknown kind, oversized or truncated frame, unknown UUID)."""


class AsrUnavailable(DialerError):
    """The speech model is missing or cannot be loaded; the worker goes on without ASR."""


class BrokerError(DialerError):
    """The MQTT broker is unreachable; events wait in the outbox."""
