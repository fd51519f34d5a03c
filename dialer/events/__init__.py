"""Events over MQTT: the outbox relay (:mod:`dialer.events.publisher`) and inbound commands
(:mod:`dialer.events.commands`).

Topic layout: :mod:`dialer.events.topics`; payloads: :mod:`dialer.events.payloads` (pure
builders, no MQTT: the storage imports them); consumer documentation: docs/events.md.
"""
