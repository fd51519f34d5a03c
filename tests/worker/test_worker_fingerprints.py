"""The worker with the simulator's announcement library (dialer/sim/data/announcements.yaml) and no
speech model: announcements are recognised by their fingerprints and decide the contact."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from dialer.domain.model import CallClass, ContactState, ResultCode
from dialer.sim.audio import DATA_DIR

from .harness import harness, run_until, seed
from .test_worker_sim import actions, contacts_by_number

UNREACHABLE, SIT_NOT_IN_SERVICE, PERSON, BLOCKED = "+79990000004", "+79990000005", "+79990000006", "+79990000015"


async def test_fingerprinted_announcements_decide_through_the_worker(tmp_path: Path) -> None:
    async with harness(tmp_path, time_scale=0.1) as (h, ami_port, as_port):
        h.settings = replace(h.settings, announcements_path=DATA_DIR)
        assert h.settings.asr.model_path is None or not h.settings.asr.model_path.exists()  # no ASR here
        numbers = [UNREACHABLE, SIT_NOT_IN_SERVICE, PERSON, BLOCKED]
        await seed(h.settings, numbers, h.clock.now())
        await run_until(h, h.options(ami_port, as_port), len(numbers))

        by_number = {f.number: f.evidence for f in h.finished}
        assert by_number[SIT_NOT_IN_SERVICE].call_class is CallClass.ANN_NOT_IN_SERVICE
        assert "recording not_in_service" in by_number[SIT_NOT_IN_SERVICE].reason
        assert by_number[BLOCKED].call_class is CallClass.ANN_BLOCKED
        assert by_number[UNREACHABLE].call_class is CallClass.ANN_TEMPORARILY_UNAVAILABLE
        assert by_number[PERSON].call_class is CallClass.PERSON  # a person is still a person

        # decided in early media: the worker hung the announcements up itself
        hangups = {a.get("Channel") for a in actions(h.sim, "Hangup")}  # type: ignore[attr-defined]
        assert {str(f.attempt_id) for f in h.finished if f.number != PERSON} <= hangups

        contacts = await contacts_by_number(h.settings.database_url)
        for number in (SIT_NOT_IN_SERVICE, BLOCKED):
            c = contacts[number]
            assert c.state is ContactState.SETTLED and c.attempts_made == 1  # type: ignore[attr-defined]
            assert c.result is ResultCode.UNAVAILABLE and c.incorrect_contact  # type: ignore[attr-defined]
        assert contacts[SIT_NOT_IN_SERVICE].journal.endswith("23/11 Номер не обслуживается или не используется")  # type: ignore[attr-defined]
        assert contacts[BLOCKED].journal.endswith("23/11 Номер заблокирован")  # type: ignore[attr-defined]
        # temporary: retry path, no flag, the announcement's own journal text
        u = contacts[UNREACHABLE]
        assert u.state is ContactState.PENDING and not u.incorrect_contact  # type: ignore[attr-defined]
        assert u.journal.endswith("23/11 Абонент временно недоступен")  # type: ignore[attr-defined]
