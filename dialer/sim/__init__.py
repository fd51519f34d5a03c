"""Asterisk simulator: an AMI server and an AudioSocket client that play call scenarios.

The demo, the tests and the benchmarks run against it instead of Asterisk. Its AMI traffic
follows real Asterisk 22 transcripts (tests/asterisk/transcripts/, re-recorded by the real-Asterisk
suite; tests/sim/test_transcripts.py and test_handover.py check
it per scenario); the scenario table is in ``dialer.sim.scenarios``.

    sim = SimAsterisk(audiosocket_addr=("127.0.0.1", 9099), time_scale=0.1)
    port = await sim.start()            # AMI on 127.0.0.1:<port>, user dialer / secret sim
    ...
    await sim.stop()

Standalone: ``python -m dialer.sim --ami-port 5038 --audiosocket 127.0.0.1:9099``.
"""

from dialer.sim.ami_server import RecordedAction, SimAsterisk, default_dialplan
from dialer.sim.channels import Channel, ChannelState
from dialer.sim.scenarios import SCENARIOS, Scenario, scenario_for_number

__all__ = [
    "SCENARIOS",
    "Channel",
    "ChannelState",
    "RecordedAction",
    "Scenario",
    "SimAsterisk",
    "default_dialplan",
    "scenario_for_number",
]
