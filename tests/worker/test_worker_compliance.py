"""The real worker against the simulator: a campaign's own caller id reaches the Originate."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from dialer.domain.compliance import ComplianceConfig, ComplianceSettings

from .harness import harness, run_until, seed

BUSY = "+79990000001"


async def test_the_campaign_caller_id_is_the_originates_caller_id(tmp_path: Path) -> None:
    async with harness(tmp_path) as (h, ami_port, as_port):
        own = ComplianceConfig(campaigns={"t": ComplianceSettings(caller_id="+74951234567")})
        h.settings = replace(h.settings, compliance=own)
        assert h.settings.dial.caller_id != "+74951234567"  # the [dial] one would be sent otherwise
        await seed(h.settings, [BUSY], h.clock.now())
        await run_until(h, h.options(ami_port, as_port), 1)
        originates = [a for a in h.sim.actions if (a.get("Action") or "").lower() == "originate"]
        assert originates and {a.get("CallerID") for a in originates} == {"+74951234567"}
