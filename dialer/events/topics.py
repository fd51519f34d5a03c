"""MQTT topic layout (docs/events.md is the reference for consumers).

Every topic starts with the configured prefix (``MqttSettings.topic_prefix``, default ``dialer``).
Outbox rows store the topic *without* the prefix, so the prefix can change without rewriting
stored events; the publisher joins the two.

    <prefix>/campaign/<campaign>/attempt      attempt finished            QoS 1
    <prefix>/campaign/<campaign>/contact      contact settled             QoS 1
    <prefix>/campaign/<campaign>/operator-result  operator's result       QoS 1
    <prefix>/campaign/<campaign>/operator     an operator took a person   QoS 1
    <prefix>/campaign/<campaign>/status       campaign status             QoS 1, retained
    <prefix>/exclusion                        exclusion notice            QoS 1
    <prefix>/exclusion/removed                exclusion lifted            QoS 1
    <prefix>/worker/<worker>/health           worker health (+ Last Will) QoS 1, retained
    <prefix>/cmd/<command type>               inbound commands            QoS 1
    <prefix>/cmd/<command type>/ack           command accepted            QoS 1
    <prefix>/cmd/<command type>/error         command rejected            QoS 1
"""

from __future__ import annotations

from dialer.errors import InputError

# Characters with a meaning in MQTT topics; a name containing them is percent-encoded so one
# campaign called "a/b" cannot publish into another campaign's subtree or match wildcards.
_ESCAPES = {"%": "%25", "/": "%2F", "+": "%2B", "#": "%23"}

MAX_TOPIC_BYTES = 65535  # MQTT limit on the UTF-8 length of a topic name


def level(name: str) -> str:
    """One topic level made from a free-form name (campaign, worker id)."""
    if not name:
        raise InputError("empty name cannot be a topic level")
    if "\x00" in name:
        raise InputError(f"name {name!r} contains a NUL character, not allowed in MQTT topics")
    return "".join(_ESCAPES.get(ch, ch) for ch in name)


def join(prefix: str, relative: str) -> str:
    """The full topic for a relative one (as stored in the outbox)."""
    topic = f"{prefix.rstrip('/')}/{relative}" if prefix else relative
    if any(ch in topic for ch in "+#\x00") or len(topic.encode()) > MAX_TOPIC_BYTES:
        raise InputError(f"invalid MQTT topic {topic!r}")
    return topic


# --- relative topics, as stored in the outbox ----------------------------------------------------


def attempt_finished(campaign: str) -> str:
    return f"campaign/{level(campaign)}/attempt"


def contact_settled(campaign: str) -> str:
    return f"campaign/{level(campaign)}/contact"


def operator_connected(campaign: str) -> str:
    return f"campaign/{level(campaign)}/operator"


def operator_result(campaign: str) -> str:
    return f"campaign/{level(campaign)}/operator-result"


def campaign_status(campaign: str) -> str:
    return f"campaign/{level(campaign)}/status"


ANNOUNCEMENT_DRIFT = "announcements/drift"
EXCLUSION = "exclusion"
EXCLUSION_REMOVED = "exclusion/removed"


def worker_health(worker_id: str) -> str:
    return f"worker/{level(worker_id)}/health"


COMMANDS = "cmd"


def command(command_type: str) -> str:
    return f"{COMMANDS}/{level(command_type)}"


def command_ack(command_type: str) -> str:
    return f"{command(command_type)}/ack"


def command_error(command_type: str) -> str:
    return f"{command(command_type)}/error"


def command_subscription(prefix: str) -> str:
    """The filter the worker subscribes to; ``+`` matches one level, so the worker never
    receives its own ``…/ack`` and ``…/error`` replies."""
    return join(prefix, COMMANDS) + "/+"


def is_retained(relative: str) -> bool:
    """Status-like topics keep their last value on the broker for late subscribers."""
    return relative.endswith("/status") or relative.endswith("/health")
