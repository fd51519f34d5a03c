"""The real instances themselves: the kit's Asterisk, the carrier, and the pbx with the project's
deploy/asterisk/ contract installed as README-asterisk.md tells a user to — checked with the
same commands that README gives, and the AMI user's least rights tried action by action."""

from __future__ import annotations

import asyncio
import re

from .kit import prefix
from .network import Carrier, Pbx
from .recorder import Recorder


def test_the_kit_gives_asterisk_22(pbx: Pbx) -> None:
    assert (prefix() / "sbin" / "asterisk").is_file()
    assert "Asterisk 22.10.1" in pbx.instance.cli("core show version")


def test_the_contract_is_installed(pbx: Pbx) -> None:
    user = pbx.instance.cli("manager show user dialer")
    perms = dict(re.findall(r"(read|write) perm: (\S+)", user))
    assert set(perms["read"].split(",")) == {"call", "agent"}, user
    assert set(perms["write"].split(",")) == {"call", "originate", "reporting"}, user
    for context in ("dialer-dial", "dialer-analyse", "dialer-operator"):
        shown = pbx.instance.cli(f"dialplan show {context}")
        assert f"'{context}'" in shown, shown
    assert "AudioSocket(${UNIQUEID},${DIALER_AUDIOSOCKET})" in pbx.instance.cli("dialplan show dialer-analyse")
    queue = pbx.instance.cli("queue show operators")
    assert "operators has 0 calls" in queue and "leastrecent" in queue, queue
    assert sum(1 for line in queue.splitlines() if "Local/op" in line) == pbx.operators
    assert "res_audiosocket.so" in pbx.instance.cli("module show like audiosocket")


def test_the_carrier_plays_every_scenario(carrier: Carrier) -> None:
    shown = carrier.instance.cli("dialplan show carrier-in")
    for number in carrier.routes:
        assert f"'{number}'" in shown, f"{number} is not routed"


async def _login(pbx: Pbx, user: str, secret: str) -> Recorder:
    return await Recorder.connect(pbx.ami_port, user, secret, booted=False)


async def test_the_dialer_user_has_what_the_worker_needs_and_no_more(pbx: Pbx) -> None:
    rec = await _login(pbx, "dialer", pbx.dialer_secret)
    try:

        async def outcome(name: str, *pairs: tuple[str, str]) -> str:
            reply = await rec.action(name, *pairs)
            return f"{reply.response}: {reply.get('Message') or ''}"

        # what the worker uses (a missing channel is "no such channel", not "permission denied")
        assert (await outcome("Ping")).startswith("Success")
        assert (await outcome("CoreShowChannels")).startswith("Success")
        assert (await outcome("QueueStatus", ("Queue", "operators"))).startswith("Success")
        assert (await outcome("QueueSummary", ("Queue", "operators"))).startswith("Success")
        for name, pairs in (
            ("Hangup", [("Channel", "Local/nobody-00000000;1")]),
            (
                "Redirect",
                [
                    ("Channel", "Local/nobody-00000000;1"),
                    ("Context", "dialer-operator"),
                    ("Exten", "s"),
                    ("Priority", "1"),
                ],
            ),
        ):
            result = await outcome(name, *pairs)
            assert "Permission denied" not in result, f"{name}: {result}"
        # what it must not be able to do
        for name, pairs in (
            ("Command", [("Command", "core show version")]),
            ("Reload", []),
            ("QueueAdd", [("Queue", "operators"), ("Interface", "Local/intruder@x/n")]),
            (
                "QueuePause",
                [("Queue", "operators"), ("Interface", "Local/op1@dialer-test-operators/n"), ("Paused", "true")],
            ),
            ("Originate", [("Channel", "Local/s@dialer-operator/n"), ("Application", "System"), ("Data", "true")]),
        ):
            result = await outcome(name, *pairs)
            refused = ("Error: Permission denied", "Error: Originate Access Forbidden")
            assert result.startswith(refused), f"{name}: {result}"
    finally:
        await rec.close()


async def test_a_wrong_secret_is_refused(pbx: Pbx) -> None:
    try:
        rec = await asyncio.wait_for(_login(pbx, "dialer", "not-the-secret"), 10)
    except ConnectionError as exc:
        assert "refused" in str(exc)
    else:
        await rec.close()
        raise AssertionError("a wrong secret was accepted")
