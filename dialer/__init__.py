"""dialer: an offline asyncio auto-dialer worker for contact centres."""

__version__ = "0.1.0"
