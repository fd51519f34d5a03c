"""The pure AMI codec: parser and serializer."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dialer.ami.protocol import AmiMessage, Parser, parse_all, serialize

WIRE = (
    b"Asterisk Call Manager/13.0.0\r\n"
    b"Response: Success\r\nActionID: login\r\nMessage: Authentication accepted\r\n\r\n"
    b"Event: VarSet\r\nChannel: Local/1@x-00000000;1\r\nVariable: A\r\nValue: \r\n\r\n"
)


def test_banner_and_messages() -> None:
    parser = Parser(expect_banner=True)
    messages = parser.feed(WIRE)
    assert parser.banner == "Asterisk Call Manager/13.0.0"
    assert parser.version == "13.0.0"
    assert [m.kind for m in messages] == ["Response:Success", "Event:VarSet"]
    assert messages[1]["Value"] == ""  # "Value: " is an empty value, not garbage
    assert not parser.garbage


def test_bare_newlines_case_insensitive_first_wins_and_repeats() -> None:
    data = b"action: Originate\nactionid: 7\nVariable: A=1\nVARIABLE: B=2\nChannel: one\nchannel: two\n\n"
    (m,) = Parser().feed(data)
    assert m.action == "Originate"
    assert m.get("ACTIONID") == "7"
    assert m.get("Channel") == "one"
    assert m.get_all("variable") == ["A=1", "B=2"]
    assert "channel" in m and "Nope" not in m


def test_garbage_lines_are_reported_and_the_stream_goes_on() -> None:
    parser = Parser()
    messages = parser.feed(b"Event: A\r\nthis is not a header\r\n : x\r\nKey: v\r\n\r\nEvent: B\r\n\r\n")
    assert [m.event for m in messages] == ["A", "B"]
    assert messages[0].headers == (("Event", "A"), ("Key", "v"))
    assert [g.line for g in parser.garbage] == ["this is not a header", " : x"]


def test_overlong_line_is_dropped_not_buffered_forever() -> None:
    parser = Parser()
    assert parser.feed(b"x" * 70000) == []
    assert parser.garbage and "too long" in parser.garbage[0].reason
    assert [m.event for m in parser.feed(b"\r\nEvent: Z\r\n\r\n")] == ["Z"]


def test_serialize_uses_crlf_and_refuses_line_breaks() -> None:
    assert serialize([("Action", "Ping"), ("ActionID", "1")]) == b"Action: Ping\r\nActionID: 1\r\n\r\n"
    try:
        serialize([("Action", "Ping\r\nAction: Hangup")])
    except ValueError as exc:
        assert "line break" in str(exc)
    else:
        raise AssertionError("a value with CRLF must be refused")


def test_parse_all_keeps_an_unterminated_last_message() -> None:
    assert [m.event for m in parse_all(b"Event: A\r\n\r\nEvent: B\r\nX: 1")] == ["A", "B"]


header_text = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=":"), min_size=1, max_size=12
)
value_text = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=0x44F, exclude_categories=("Cc", "Cs")), max_size=30
).map(str.strip)
messages_st = st.lists(
    st.lists(st.tuples(header_text, value_text), min_size=1, max_size=6).map(lambda hs: AmiMessage(tuple(hs))),
    min_size=1,
    max_size=5,
)


@given(messages_st, st.lists(st.integers(min_value=1, max_value=40), max_size=30))
def test_any_chunking_gives_the_same_messages(messages: list[AmiMessage], cuts: list[int]) -> None:
    wire = b"".join(m.encode() for m in messages)
    parser = Parser()
    out: list[AmiMessage] = []
    pos = 0
    for cut in cuts:
        out += parser.feed(wire[pos : pos + cut])
        pos += cut
    out += parser.feed(wire[pos:])
    assert out == messages
    assert not parser.garbage
