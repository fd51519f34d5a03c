"""The operator tracker (dialer.pacing.operators) fed with Asterisk 22's own queue events: the
transcripts recorded from a real Asterisk (tests/asterisk/transcripts/handover/) and events shaped
field for field as apps/app_queue.c writes them (queue_member_blob_create, manager_queues_status,
manager_queues_summary)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialer.ami.transcript import load_transcript
from dialer.pacing.operators import OperatorTracker
from dialer.pacing.pacer import OperatorSupply

TRANSCRIPTS = Path(__file__).resolve().parents[1] / "asterisk" / "transcripts" / "handover"


def member_event(name: str, member: str, status: int, *, paused: bool = False, in_call: bool = False) -> dict[str, str]:
    """queue_member_blob_create's fields (QueueMemberStatus, QueueMemberPause, QueueMemberAdded …)."""
    return {
        "Event": name,
        "Privilege": "agent,all",
        "Queue": "operators",
        "MemberName": member,
        "Interface": f"PJSIP/{member}",
        "StateInterface": f"PJSIP/{member}",
        "Membership": "dynamic",
        "Penalty": "0",
        "CallsTaken": "3",
        "LastCall": "1795983600",
        "LastPause": "0",
        "LoginTime": "1795983588",
        "InCall": "1" if in_call else "0",
        "Status": str(status),
        "Paused": "1" if paused else "0",
        "PausedReason": "lunch" if paused else "",
        "Ringinuse": "0",
        "Wrapuptime": "0",
    }


def listed_member(member: str, status: int, *, paused: bool = False) -> dict[str, str]:
    """manager_queues_status's QueueMember row: Name and Location, not MemberName/Interface."""
    return {
        "Event": "QueueMember",
        "Queue": "operators",
        "Name": member,
        "Location": f"PJSIP/{member}",
        "StateInterface": f"PJSIP/{member}",
        "Membership": "dynamic",
        "Penalty": "0",
        "CallsTaken": "0",
        "LastCall": "0",
        "LastPause": "0",
        "LoginTime": "1795983588",
        "InCall": "0",
        "Status": str(status),
        "Paused": "1" if paused else "0",
        "PausedReason": "",
        "Wrapuptime": "0",
        "ActionID": "q1",
    }


@pytest.mark.parametrize("stem", ["20-person-handed-over-answered", "21-person-abandons-queue"])
def test_real_transcript_member_rings_then_is_free_again(stem: str) -> None:
    tracker = OperatorTracker(frozenset({"operators"}))
    seen: list[OperatorSupply | None] = []
    for t, msg in load_transcript(TRANSCRIPTS / f"{stem}.txt"):
        if tracker.feed(dict(msg.headers), t):
            seen.append(tracker.supply("operators"))
    # The one operator of the real suite: rung (Status 2, busy), then free again (Status 1).
    assert seen == [OperatorSupply(free=0, busy=1), OperatorSupply(free=1, busy=0)]
    assert tracker.events == 2
    assert tracker.handle_s is not None and tracker.handle_s > 0  # busy from the ring to the end
    assert [m.name for m in tracker.members("operators")] == ["op1"]


def test_other_queues_and_other_events_are_ignored() -> None:
    tracker = OperatorTracker(frozenset({"operators"}))
    other = member_event("QueueMemberStatus", "x", 1) | {"Queue": "support"}
    assert not tracker.feed(other, 0.0)
    assert not tracker.feed({"Event": "Newchannel", "Uniqueid": "1.1"}, 0.0)
    assert tracker.supply("operators") is None  # nothing known: a paced campaign waits


@pytest.mark.parametrize(
    ("events", "free", "busy"),
    [
        ([member_event("QueueMemberAdded", "a", 1)], 1, 0),
        ([member_event("QueueMemberStatus", "a", 0)], 1, 0),  # AST_DEVICE_UNKNOWN counts as available
        ([member_event("QueueMemberStatus", "a", 2)], 0, 1),  # INUSE
        ([member_event("QueueMemberStatus", "a", 6)], 0, 1),  # RINGING
        ([member_event("QueueMemberStatus", "a", 1, in_call=True)], 0, 1),  # InCall
        ([member_event("QueueMemberStatus", "a", 5)], 0, 0),  # UNAVAILABLE: not logged in
        ([member_event("QueueMemberStatus", "a", 4)], 0, 0),  # INVALID
        ([member_event("QueueMemberAdded", "a", 1), member_event("QueueMemberPause", "a", 1, paused=True)], 0, 0),
        (
            [
                member_event("QueueMemberPause", "a", 1, paused=True),
                member_event("QueueMemberPause", "a", 1, paused=False),
            ],
            1,
            0,
        ),
        ([member_event("QueueMemberAdded", "a", 1), member_event("QueueMemberRemoved", "a", 1)], 0, 0),
        (
            [
                member_event("QueueMemberStatus", "a", 1),
                member_event("QueueMemberStatus", "b", 2),
                member_event("QueueMemberStatus", "c", 1),
            ],
            2,
            1,
        ),
    ],
)
def test_member_states(events: list[dict[str, str]], free: int, busy: int) -> None:
    tracker = OperatorTracker(frozenset({"operators"}))
    for i, ev in enumerate(events):
        tracker.feed(ev, float(i))
    assert tracker.supply("operators") == OperatorSupply(free=free, busy=busy)


def test_handle_time_from_busy_to_free() -> None:
    tracker = OperatorTracker(frozenset({"operators"}))
    tracker.feed(member_event("QueueMemberStatus", "a", 1), 0.0)
    tracker.feed(member_event("QueueMemberStatus", "a", 2), 10.0)
    tracker.feed(member_event("QueueMemberStatus", "a", 2, in_call=True), 12.0)  # still busy
    tracker.feed(member_event("QueueMemberStatus", "a", 1), 100.0)
    tracker.feed(member_event("QueueMemberStatus", "a", 2), 110.0)
    tracker.feed(member_event("QueueMemberStatus", "a", 1), 140.0)
    assert tracker.handle_s == pytest.approx((90.0 + 30.0) / 2)


def test_listing_after_reconnect_replaces_what_was_known() -> None:
    tracker = OperatorTracker(frozenset({"operators"}))
    tracker.feed(member_event("QueueMemberStatus", "a", 1), 0.0, "pbx1")
    tracker.feed(member_event("QueueMemberStatus", "b", 1), 0.0, "pbx1")
    tracker.feed(member_event("QueueMemberStatus", "z", 1), 0.0, "pbx2")
    # pbx1 reconnects: while away "a" went on a call and "b" logged off; the listing says so.
    tracker.begin_listing("pbx1")
    tracker.feed({"Event": "QueueParams", "Queue": "operators", "Calls": "0"}, 5.0, "pbx1")
    tracker.feed(listed_member("a", 2), 5.0, "pbx1")
    tracker.feed({"Event": "QueueStatusComplete", "EventList": "Complete", "ListItems": "2"}, 5.0, "pbx1")
    assert tracker.supply("operators") == OperatorSupply(free=1, busy=1)  # z (pbx2) free, a busy
    assert sorted(m.name for m in tracker.members("operators")) == ["a", "z"]


def test_summary_counts_until_members_are_known() -> None:
    tracker = OperatorTracker(frozenset({"operators"}))
    summary = {
        "Event": "QueueSummary",
        "Queue": "operators",
        "LoggedIn": "5",
        "Available": "2",
        "Callers": "0",
        "HoldTime": "3",
        "TalkTime": "95",
        "LongestHoldTime": "0",
    }
    assert tracker.feed(summary, 0.0, "pbx1")
    assert tracker.supply("operators") == OperatorSupply(free=2, busy=3)
    tracker.feed(member_event("QueueMemberStatus", "a", 1), 1.0, "pbx1")  # members now known: they count
    assert tracker.supply("operators") == OperatorSupply(free=1, busy=0)
