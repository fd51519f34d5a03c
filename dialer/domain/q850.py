"""Q.850 hangup causes (include/asterisk/causes.h) and Asterisk DialStatus values, by name."""

from __future__ import annotations

import enum


class Cause(enum.IntEnum):
    NOT_DEFINED = 0
    UNALLOCATED = 1
    NO_ROUTE_DESTINATION = 3
    NORMAL_CLEARING = 16
    USER_BUSY = 17
    NO_USER_RESPONSE = 18
    NO_ANSWER = 19
    SUBSCRIBER_ABSENT = 20
    CALL_REJECTED = 21
    NUMBER_CHANGED = 22
    DESTINATION_OUT_OF_ORDER = 27
    INVALID_NUMBER_FORMAT = 28
    NORMAL_UNSPECIFIED = 31
    NORMAL_CIRCUIT_CONGESTION = 34
    NETWORK_OUT_OF_ORDER = 38
    NORMAL_TEMPORARY_FAILURE = 41
    SWITCH_CONGESTION = 42
    REQUESTED_CHAN_UNAVAIL = 44
    FACILITY_NOT_SUBSCRIBED = 50
    OUTGOING_CALL_BARRED = 52
    INCOMING_CALL_BARRED = 54
    RECOVERY_ON_TIMER_EXPIRE = 102
    INTERWORKING = 127


# ast_cause2str() texts, as Asterisk prints them in Hangup events (Cause-txt).
CAUSE_TEXT: dict[int, str] = {
    0: "Unknown",
    1: "Unallocated (unassigned) number",
    3: "No route to destination",
    16: "Normal Clearing",
    17: "User busy",
    18: "No user responding",
    19: "User alerting, no answer",
    20: "Subscriber absent",
    21: "Call Rejected",
    22: "Number changed",
    27: "Destination out of order",
    28: "Invalid number format",
    31: "Normal, unspecified",
    34: "Circuit/channel congestion",
    38: "Network out of order",
    41: "Temporary failure",
    42: "Switching equipment congestion",
    127: "Interworking, unspecified",
}


CONGESTION_CAUSES = frozenset(
    {
        Cause.NORMAL_CIRCUIT_CONGESTION,
        Cause.NETWORK_OUT_OF_ORDER,
        Cause.NORMAL_TEMPORARY_FAILURE,
        Cause.SWITCH_CONGESTION,
        Cause.DESTINATION_OUT_OF_ORDER,
        Cause.REQUESTED_CHAN_UNAVAIL,
        Cause.RECOVERY_ON_TIMER_EXPIRE,
    }
)


def cause_name(code: int | None) -> str:
    if code is None:
        return "no cause"
    try:
        return f"{code} ({Cause(code).name.replace('_', ' ').lower()})"
    except ValueError:
        return str(code)


class DialStatus(enum.StrEnum):
    ANSWER = "ANSWER"
    BUSY = "BUSY"
    CONGESTION = "CONGESTION"
    CANCEL = "CANCEL"
    CHANUNAVAIL = "CHANUNAVAIL"
    NOANSWER = "NOANSWER"
    DONTCALL = "DONTCALL"
    TORTURE = "TORTURE"
    INVALIDARGS = "INVALIDARGS"
    # DialState only (the call is still being set up)
    RINGING = "RINGING"
    PROCEEDING = "PROCEEDING"
    PROGRESS = "PROGRESS"


class OriginateReason(enum.IntEnum):
    """OriginateResponse ``Reason`` (main/pbx.c AST_CONTROL_* values)."""

    FAILURE = 0
    HANGUP = 1
    RING_TIMEOUT = 3  # AST_CONTROL_RINGING: the ring timeout passed, nobody answered
    ANSWERED = 4
    BUSY = 5
    CONGESTION = 8
