"""Events over MQTT: the outbox relay (publisher) and inbound commands (subscriber).

Topic layout: :mod:`dialer.events.topics`; payloads: :mod:`dialer.events.payloads`; consumer
documentation: docs/events.md.

The names below are imported lazily: the storage imports the pure builders
(``dialer.events.payloads``), and importing them must not pull in the MQTT client.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dialer.events.commands import (
        CommandHandler,
        CommandProcessor,
        CommandRejected,
        CommandStore,
        CommandSubscriber,
        CommandType,
        DroppedCallback,
        ExclusionRequest,
        OperatorOutcome,
        OperatorResult,
        Reply,
        parse_command,
    )
    from dialer.events.payloads import OutboxEvent
    from dialer.events.publisher import OutboxPublisher, OutboxRowLike, OutboxStore

_MODULE_OF = {
    "CommandHandler": "commands",
    "CommandProcessor": "commands",
    "CommandRejected": "commands",
    "CommandStore": "commands",
    "CommandSubscriber": "commands",
    "CommandType": "commands",
    "DroppedCallback": "commands",
    "ExclusionRequest": "commands",
    "OperatorOutcome": "commands",
    "OperatorResult": "commands",
    "Reply": "commands",
    "parse_command": "commands",
    "OutboxEvent": "payloads",
    "OutboxPublisher": "publisher",
    "OutboxRowLike": "publisher",
    "OutboxStore": "publisher",
}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = [
    "CommandHandler",
    "CommandProcessor",
    "CommandRejected",
    "CommandStore",
    "CommandSubscriber",
    "CommandType",
    "DroppedCallback",
    "ExclusionRequest",
    "OperatorOutcome",
    "OperatorResult",
    "OutboxEvent",
    "OutboxPublisher",
    "OutboxRowLike",
    "OutboxStore",
    "Reply",
    "parse_command",
]
