"""`dialer report` (issue 13) on an SQLite campaign seeded through the real repository: the
analysis numbers, the what-if replay under another rules file, and the HTML opened in headless
Chromium with its plots decoded."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from dialer.cli import main
from dialer.config import DEFAULT_CONFIG_DIR
from dialer.csvio import CsvContact
from dialer.domain import policy
from dialer.domain.model import CallClass, Evidence, OwnerKind
from dialer.domain.numbering import NumberingIndex, NumberRange
from dialer.domain.rules import RulesTable
from dialer.domain.schedule import CallingWindows
from dialer.events.notifier import EventNotifier
from dialer.report import analysis as an
from dialer.storage.campaigns import CampaignSettings
from dialer.storage.db import Database
from dialer.storage.ingest import ContactPreparer
from dialer.storage.migrate import upgrade
from dialer.storage.numbering import NumberingRangeRow
from dialer.storage.repo import Repository
from dialer.storage.stats import campaign_facts, numbering_rows, outbox_backlog

CAMPAIGN = CampaignSettings(name="autumn", timezone="Europe/Moscow", concurrency=50)
WINDOWS = CallingWindows.parse(weekday=CAMPAIGN.weekday_window, weekend=CAMPAIGN.weekend_window)
START = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)  # Monday 11:00 in Moscow
B, NA, P, VM, NIS = (
    CallClass.BUSY,
    CallClass.NO_ANSWER,
    CallClass.PERSON,
    CallClass.VOICEMAIL,
    CallClass.ANN_NOT_IN_SERVICE,
)
# the scripted history of each contact (mobile +7916…i); the rules decide when each settles
SCRIPT: list[list[CallClass]] = [
    [B, B, P],
    [B, P],
    [P],
    [NA, NA, NA],
    [NA, NA, NA],
    [NA, VM, P],
    [NIS],
    [NIS],
    [VM, VM, VM],
    [B, NA, B],
]
RULES = RulesTable.load(DEFAULT_CONFIG_DIR / "rules.yaml")
# decision latency (ms from the start of the audio) the seed stores per class, plus 100 ms per
# attempt number; busy and no answer came without audio (None)
LATENCY_MS = {P: 900, VM: 2600, NIS: 3100}


def number(i: int) -> str:
    return f"+7916{i:07d}"


async def seed(url: str, *, latencies: bool = True) -> None:
    """Dial the script day by day through the real repository (claim, start, finish).
    ``latencies=False``: attempts store no decision latency, as those of versions before 0005."""
    db = Database(url)
    try:
        await upgrade(db)
        repo = await Repository.open(db, EventNotifier())
        await repo.ensure_campaign(CAMPAIGN, START)
        prep = ContactPreparer(CAMPAIGN, RULES, frozenset())
        rows = [
            prep.prepare(CsvContact(i + 2, f"c{i}", number(i), OwnerKind.PERSON, "", frozenset(), ""), START)
            for i in range(len(SCRIPT))
        ]
        await repo.import_contacts(CAMPAIGN, rows, START)
        await repo.replace_numbering(
            [
                NumberingRangeRow(916, 0, 4, "MTS", "Moscow", "", ""),
                NumberingRangeRow(916, 5, 9999999, "Beeline", "Moscow", "", ""),
            ],
            "test",
            START,
        )
        index = {number(i): i for i in range(len(SCRIPT))}
        for day in range(6):
            now = START + timedelta(days=day, hours=day % 3)
            for c in await repo.claim_due(CAMPAIGN.name, "w", now, 50):
                script = SCRIPT[index[c.contact.e164 or ""]]
                cls = script[c.attempt_no - 1]
                o = policy.apply_attempt(c.contact, cls, c.attempt_no, now, RULES, WINDOWS, CAMPAIGN.timezone)
                attempt = uuid.uuid4()
                await repo.start_attempt(c, attempt, now)
                ms = LATENCY_MS.get(cls) if latencies else None
                ev = Evidence(
                    cls,
                    0.9,
                    f"test: {cls.value}",
                    answered=cls in (P, VM),
                    decision_ms=ms + 100 * c.attempt_no if ms is not None else None,
                )
                await repo.finish_attempt(
                    attempt, ev, o, now + timedelta(seconds=40), counts_as_attempt=o.counts_as_attempt
                )
    finally:
        await db.dispose()


@pytest.fixture
async def db_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'r.sqlite'}"
    await seed(url)
    return url


@pytest.fixture
async def legacy_db_url(tmp_path: Path) -> str:
    """The campaign dialled by a version that stored no decision latency."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'legacy.sqlite'}"
    await seed(url, latencies=False)
    return url


PG_URL = os.environ.get("DIALER_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


@pytest.fixture(params=["sqlite", "postgresql"])
async def any_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The seeded campaign on SQLite, and on a PostgreSQL database of its own (dropped after)."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'r.sqlite'}"
        await seed(url)
        yield url
        return
    name = f"dialer_test_ops_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = make_url(PG_URL).set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        conn = await asyncpg.connect(admin, timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL at {PG_URL} is unreachable ({exc})")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
        await seed(url)
        yield url
    finally:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


async def test_analysis_of_the_seeded_campaign(any_db_url: str) -> None:
    db = Database(any_db_url)
    try:
        facts = await campaign_facts(db, CAMPAIGN.name)
        later = await campaign_facts(db, CAMPAIGN.name, since=START + timedelta(days=1))
        backlog = await outbox_backlog(db)
        rows = await numbering_rows(db)
    finally:
        await db.dispose()
    # nothing published (no broker in this test): every event of the campaign waits, the first
    # one written at the first attempt's end or before
    assert backlog.events >= len(facts.attempts)
    assert backlog.oldest_created_at is not None and backlog.oldest_created_at <= START + timedelta(seconds=40)
    assert [r[3] for r in rows] == ["MTS", "Beeline"]
    a = facts.attempts
    assert len(a) == sum(len(s) for s in SCRIPT)
    assert len(later.attempts) == len(a) - len(SCRIPT)  # the first day's attempts left out
    by_no = an.outcomes_by_attempt(a)
    assert by_no[1]["busy"] == 3 and by_no[1]["person"] == 1
    reach = an.reach_by(a, lambda f: f.attempt_no)
    assert (reach[1].reached, reach[1].total) == (1, 10)
    assert (reach[2].reached, reach[2].total) == (1, 7)
    assert (reach[3].reached, reach[3].total) == (2, 6)
    hours = an.reach_by(a, an.local_time_key(facts.timezone, "hour"))
    assert set(hours) == {11, 12, 13}  # 08:00, 09:00, 10:00 UTC in Moscow
    days = an.reach_by(a, an.local_time_key(facts.timezone, "weekday"))
    assert set(days) == {0, 1, 2}
    settle = an.hours_to_settlement(a)
    assert len(settle) == len(SCRIPT)
    assert min(settle) == pytest.approx(40 / 3600)  # one attempt of 40 s
    mix = an.class_mix_by_carrier(a, _index())
    assert sum(mix["MTS"].values()) == sum(len(SCRIPT[i]) for i in range(5))
    assert sum(mix["Beeline"].values()) == sum(len(SCRIPT[i]) for i in range(5, 10))
    assert an.signals(a)  # every attempt has one
    # decision latency per class group, from attempts.decision_ms (busy / no answer had no audio)
    lat = an.decision_latency_by_group(a)
    assert list(lat) == ["announcement", "person", "machine"]
    assert sorted(lat["announcement"]) == [3.2, 3.2]  # both not-in-service numbers, first attempt
    assert sorted(lat["person"]) == [1.0, 1.1, 1.2, 1.2]  # attempts 1, 2, 3, 3
    assert sorted(lat["machine"]) == [2.7, 2.8, 2.8, 2.9]
    rec = an.recorded(a)
    assert (rec.contacts, rec.calls, rec.persons) == (10, 23.0, 4.0)
    # replayed under the rules that made the history: nothing changes
    same = an.what_if(a, RULES, "same")
    assert (same.calls, same.persons, same.extra_calls, same.settled_earlier, same.dial_beyond) == (
        23.0,
        4.0,
        0.0,
        0,
        0,
    )


def _index() -> NumberingIndex:
    return NumberingIndex([NumberRange(916, 0, 4, "MTS", "Moscow"), NumberRange(916, 5, 9999999, "Beeline", "Moscow")])


def stricter_rules(tmp_path: Path, settle_at: int) -> Path:
    """config/rules.yaml with busy, no_answer and voicemail settled at ``settle_at``."""
    text = (DEFAULT_CONFIG_DIR / "rules.yaml").read_text(encoding="utf-8")
    text = re.sub(r"\nmax_attempts: 3\n", f"\nmax_attempts: {max(3, settle_at)}\n", text)
    for cls in ("busy", "no_answer", "voicemail"):
        text = re.sub(rf"(\n  {cls}:[^\n]*\n    settle_at: )3", rf"\g<1>{settle_at}", text)
    path = tmp_path / f"rules_{settle_at}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


async def test_what_if_other_rules(db_url: str, tmp_path: Path) -> None:
    db = Database(db_url)
    try:
        a = (await campaign_facts(db, CAMPAIGN.name)).attempts
    finally:
        await db.dispose()
    one = an.what_if(a, RulesTable.load(stricter_rules(tmp_path, 1)), "one")
    # every busy/no-answer/voicemail first attempt now settles: the 7 contacts with more than one
    # attempt stop after it, and only contact 2 (a person at once) is reached
    assert one.calls == 10.0 and one.persons == 1.0 and one.settled_earlier == 7
    five = an.what_if(a, RulesTable.load(stricter_rules(tmp_path, 5)), "five")
    # contacts 3, 4, 8, 9 are dialled past their history: estimated extra calls, and some reach
    assert five.dial_beyond == 4
    assert five.extra_calls > 0 and five.calls == pytest.approx(23.0 + five.extra_calls)
    assert five.persons > 4.0


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def test_report_html_opens_in_headless_chromium(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.html"
    other = stricter_rules(tmp_path, 1)
    args = ["--db", db_url, "report", "--campaign", "autumn", "-o", str(out), "--rules", str(other)]
    assert main([*args, "--recordings", str(tmp_path / "none")]) == 0
    assert "23 attempts" in capsys.readouterr().out
    page = out.read_text(encoding="utf-8")
    assert "http://" not in page and "https://" not in page  # self-contained
    pngs = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(pngs) == 8
    import matplotlib.image

    for png in pngs:
        img = matplotlib.image.imread(io.BytesIO(base64.b64decode(png)), format="png")
        assert img.shape[0] > 100 and img.shape[1] > 300
        assert img[..., :3].std() > 0.05  # not a blank canvas
    assert "rules_1.yaml" in page and "persons reached" in page
    if CHROMIUM is None:
        pytest.fail("headless Chromium (Debian package chromium) is needed: scripts/setup.sh installs it")
    shot = tmp_path / "shot.png"
    run = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", out.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    dom = run.stdout
    assert dom.count('class="plot"') == 8
    assert "Reach by weekday" in dom and "What if" in dom
    # the decision-latency plot, from the stored column: 10 attempts with audio, three groups
    assert 'alt="Decision latency"' in dom and "10 attempts with audio" in dom
    assert "No decision latency" not in dom
    run = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1000,4000",
            f"--screenshot={shot}",
            out.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0 and shot.is_file(), run.stderr[-2000:]
    img = matplotlib.image.imread(str(shot))
    # the rendered page has plot pixels (coloured bars) well down the page, not just text
    lower = img[img.shape[0] // 3 :, :, :3]
    colourful = ((lower.max(axis=2) - lower.min(axis=2)) > 0.3).mean()
    assert colourful > 0.005


def test_report_bad_input_is_one_line(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "r.html")
    assert main(["--db", db_url, "report", "--campaign", "nope", "-o", out]) == 1
    assert capsys.readouterr().err.strip() == "dialer: error: no campaign 'nope' in the database"
    assert (
        main(
            ["--db", db_url, "report", "--campaign", "autumn", "-o", out, "--from", "2026-11-20", "--to", "2026-11-19"]
        )
        == 1
    )
    assert "--from must be before --to" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("classes: [\n")
    assert main(["--db", db_url, "report", "--campaign", "autumn", "-o", out, "--rules", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("dialer: error: ") and "bad.yaml" in err and len(err.strip().splitlines()) == 1


def test_dead_air_plotted_where_stored(tmp_path: Path) -> None:
    from dialer.report.render import ReportInput, render_html
    from dialer.storage.stats import AttemptFact, CampaignFacts

    at = START
    facts = [
        AttemptFact(
            i, number(i), "person", None, "settled", 1, "campaign", at, at, "person", "person: hi", True, 16, ms
        )
        for i, ms in enumerate([120, 300, 450, 0, 800])
    ]
    page = render_html(ReportInput(CampaignFacts("x", "Europe/Moscow", facts), None, None, at, None, []))
    assert page.count('class="plot"') == 8
    assert "5 hand-overs" in page and "No dead air" not in page and "No decision latency here" in page
    assert an.dead_air_s(facts) == [0.12, 0.3, 0.45, 0.0, 0.8]


def write_call(
    root: Path,
    day: str,
    name: str,
    campaign: str,
    started: datetime,
    first_frame_ms: int | None,
    decided_ms: int | None,
) -> None:
    """A call recording in the layout of dialer.session.recording (only what the report reads)."""
    from dialer.session.recording import CALL_FILE, EVENTS_FILE, LAYOUT_VERSION

    d = root / day / name
    d.mkdir(parents=True)
    decision = {"call_class": "busy", "decided_at_ms": decided_ms} if decided_ms is not None else None
    meta = {"version": LAYOUT_VERSION, "attempt_id": str(uuid.uuid4()), "complete": True, "campaign": campaign,
            "started_at": started.isoformat(), "decision": decision}  # fmt: skip
    (d / CALL_FILE).write_text(json.dumps(meta), encoding="utf-8")
    lines = [json.dumps({"t": 10, "k": "ami", "h": {}}, separators=(",", ":"))]
    if first_frame_ms is not None:
        lines += [
            json.dumps({"t": first_frame_ms + 20 * i, "k": "frame", "i": i, "n": 160}, separators=(",", ":"))
            for i in range(3)
        ]
    (d / EVENTS_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_decision_latency_from_recordings(
    legacy_db_url: str, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Attempts of older versions store no latency: the report falls back to the recordings;
    where the attempts store it, the recordings are not read."""
    from dialer.report.recorded import decision_latencies_s

    rec = tmp_path / "recordings"
    write_call(rec, "2026-11-16", "a", "autumn", START, 500, 1700)
    write_call(rec, "2026-11-16", "b", "autumn", START + timedelta(hours=1), 300, 800)
    write_call(rec, "2026-11-16", "c", "autumn", START, None, 900)  # no audio
    write_call(rec, "2026-11-16", "d", "other", START, 100, 200)  # another campaign
    write_call(rec, "2026-11-17", "e", "autumn", START + timedelta(days=1), 0, None)  # undecided
    (rec / "2026-11-17" / "broken").mkdir()
    (rec / "2026-11-17" / "broken" / "call.json").write_text("{", encoding="utf-8")
    assert sorted(decision_latencies_s(rec, "autumn")) == [0.5, 1.2]
    assert decision_latencies_s(rec, "autumn", since=START + timedelta(minutes=30)) == [0.5]
    out = tmp_path / "r.html"
    args = ["report", "--campaign", "autumn", "-o", str(out), "--recordings", str(rec)]
    assert main(["--db", legacy_db_url, *args]) == 0
    page = out.read_text(encoding="utf-8")
    assert page.count('class="plot"') == 8 and "2 recorded calls" in page and "attempts with audio" not in page
    assert "No decision latency" not in page and "No dead air here" in page
    assert main(["--db", db_url, *args]) == 0
    page = out.read_text(encoding="utf-8")
    assert page.count('class="plot"') == 8 and "10 attempts with audio" in page and "recorded calls" not in page
