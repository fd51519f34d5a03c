"""Fixtures of the real-Asterisk suite: the carrier (session-wide) and the main pbx.

Every instance a test starts is listed in ``RUNNING``; when a test of this folder fails, the tail
of each one's console and log/messages is attached to the report.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator

import pytest

from .kit import Instance
from .network import Carrier, Pbx, make_carrier, make_pbx
from .scenarios import ROUTES

RUNNING: list[Instance] = []


def started(instance: Instance) -> Instance:
    instance.start()
    RUNNING.append(instance)
    return instance


def removed(instance: Instance) -> None:
    if instance in RUNNING:
        RUNNING.remove(instance)
    instance.remove()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and "tests/asterisk" in str(item.path):
        for instance in list(RUNNING):
            report.sections.append((f"asterisk {instance.name} ({instance.run})", instance.diagnostics()))
    return report


@pytest.fixture(scope="session")
def carrier() -> Iterator[Carrier]:
    """The carrier: plays every scenario of tests/asterisk/scenarios.py by dialled number."""
    c = make_carrier(ROUTES)
    started(c.instance)
    try:
        yield c
    finally:
        removed(c.instance)


@pytest.fixture(scope="session")
def pbx(carrier: Carrier) -> Iterator[Pbx]:
    """The main pbx: the deploy/asterisk contract, 8 operators answering after 3 s."""
    p = make_pbx(carrier)
    started(p.instance)
    try:
        yield p
    finally:
        removed(p.instance)
