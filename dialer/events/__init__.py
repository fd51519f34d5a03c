"""Events over MQTT: the outbox relay (:mod:`dialer.events.publisher`) and inbound commands
(:mod:`dialer.events.commands`).

Topic layout: :mod:`dialer.events.topics`; payloads: :mod:`dialer.events.payloads` (pure
builders, no MQTT); :mod:`dialer.events.notifier` builds the storage's outbox rows with them (the
storage never imports this package: it is handed the notifier); consumer documentation:
docs/events.md.
"""
