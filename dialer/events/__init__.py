"""Events over MQTT: the outbox relay (publisher) and inbound commands (subscriber).

Topic layout: :mod:`dialer.events.topics`; payloads: :mod:`dialer.events.payloads`; consumer
documentation: docs/events.md.
"""

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
