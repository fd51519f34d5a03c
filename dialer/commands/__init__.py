"""CLI verb groups; each module has ``register(subparsers)`` (see dialer.cli.COMMAND_MODULES)."""
