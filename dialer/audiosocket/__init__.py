"""AudioSocket: codec (pure) and the asyncio server the worker runs."""
