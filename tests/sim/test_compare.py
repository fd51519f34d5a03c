"""The transcript comparison itself: which reorderings it forgives and which it reports."""

from __future__ import annotations

from dialer.ami.protocol import AmiMessage
from tests.sim.compare import compare

L2 = "Local/79992000101@dialer-dial-00000000;2"
L1 = "Local/79992000101@dialer-dial-00000000;1"


def _varset(channel: str, value: str) -> AmiMessage:
    return AmiMessage.build(("Event", "VarSet"), ("Channel", channel), ("Variable", "X"), ("Value", value))


def _originate_ringing() -> AmiMessage:
    return AmiMessage.build(("Event", "DialState"), ("DestChannel", L1), ("DialStatus", "RINGING"))


def _trunk_up() -> AmiMessage:
    return AmiMessage.build(("Event", "Newstate"), ("Channel", "IAX2/carrier-1"), ("ChannelState", "6"))


def test_the_originates_dial_events_may_come_late_against_other_channels() -> None:
    # Real: ;2's variable, then the originate's RINGING a second late; the simulator sends the
    # RINGING first. The originate's thread publishes it when it reads ;1: not an order defect.
    real = [(0.1, _varset(L2, "a")), (1.1, _originate_ringing())]
    assert compare(real, [_originate_ringing(), _varset(L2, "a")], tolerance_s=0.25).ok


def test_other_channels_keep_their_order() -> None:
    real = [(0.1, _varset(L2, "a")), (1.1, _trunk_up())]
    result = compare(real, [_trunk_up(), _varset(L2, "a")], tolerance_s=0.25)
    assert not result.ok
    assert "the simulator sent them the other way round" in result.problems[0]


def test_the_originates_own_sequence_is_still_exact() -> None:
    busy = AmiMessage.build(("Event", "DialState"), ("DestChannel", L1), ("DialStatus", "BUSY"))
    real = [(0.1, _originate_ringing()), (0.2, busy)]
    assert compare(real, [_originate_ringing(), busy], tolerance_s=0.25).ok
    assert not compare(real, [busy, _originate_ringing()], tolerance_s=0.25).ok
