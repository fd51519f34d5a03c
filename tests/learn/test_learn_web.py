"""`dialer announcements serve`: the review page, driven by a real headless Chromium (Debian's
chromium + chromium-driver, through selenium) — listen to a clip, approve with a class, reject —
and over plain HTTP for the refusals (foreign form, no name, bad paths, huge bodies)."""

from __future__ import annotations

import asyncio
import shutil
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from dialer.config import Settings
from dialer.learn.cluster import Cluster
from dialer.learn.collect import collect
from dialer.learn.library import LEARNED_FILE
from dialer.learn.store import LearnStore
from dialer.learn.web import ReviewApp, start

from .conftest import base_setup

if TYPE_CHECKING:
    from selenium.webdriver import Chrome

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture
async def served(learn_env: tuple[Path, Settings, list[Path]]) -> AsyncIterator[tuple[str, ReviewApp, Settings]]:
    _cfg, settings, _calls = learn_env
    store = LearnStore(settings.learn.dir)
    await asyncio.to_thread(collect, settings.recording.dir, base_setup(settings), store, now=NOW)
    assert settings.announcements_path is not None
    app = ReviewApp(store, settings.announcements_path, lambda: NOW)
    server = await start(app, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}", app, settings
        server.close()


def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kw: object) -> None:
        return None


def _post(url: str, form: dict[str, str], raw: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    data = raw if raw is not None else urllib.parse.urlencode(form).encode()
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, data=data, method="POST"), timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def _chrome() -> Chrome:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--autoplay-policy=no-user-gesture-required",
    ):
        opts.add_argument(arg)
    opts.binary_location = str(CHROMIUM)
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)


def _browse(url: str, keep: Cluster, proposed: str, drop: Cluster) -> dict[str, object]:
    """Listen to ``keep``'s clip, approve it as ``proposed`` and reject ``drop`` in the page, as a
    reviewer would; what the page showed."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    # a click posts a form and loads a new page: an element read from the old one goes stale
    stale = (StaleElementReferenceException,)

    driver = _chrome()
    try:
        driver.set_script_timeout(20)
        driver.get(url + "/")
        rows = driver.find_elements(By.CSS_SELECTOR, "tr[data-status=open]")
        # the clip plays in the browser: its metadata loads and says how long it is
        duration = driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            f"const a = document.querySelector('#row-{keep.id} audio');"
            "a.addEventListener('loadedmetadata', () => done(a.duration));"
            "a.addEventListener('error', () => done(-1));"
            "a.preload = 'auto'; a.load();"
        )
        selected = Select(driver.find_element(By.ID, f"class-{keep.id}")).first_selected_option.text
        Select(driver.find_element(By.ID, f"class-{keep.id}")).select_by_value(proposed)
        driver.find_element(By.ID, f"by-{keep.id}").send_keys("olga")
        driver.find_element(By.ID, f"approve-{keep.id}").click()
        WebDriverWait(driver, 10, ignored_exceptions=stale).until(lambda d: d.find_elements(By.ID, "note"))
        note1 = driver.find_element(By.ID, "note").text
        driver.find_element(By.ID, f"rejectby-{drop.id}").send_keys("olga")
        driver.find_element(By.ID, f"reject-{drop.id}").click()
        WebDriverWait(driver, 10, ignored_exceptions=stale).until(
            lambda d: "rejected" in d.find_element(By.ID, "note").text
        )
        statuses = {
            r.get_attribute("id"): r.get_attribute("data-status")
            for r in driver.find_elements(By.CSS_SELECTOR, "tr[id]")
        }
        return {"rows": len(rows), "duration": duration, "selected": selected, "note": note1, "statuses": statuses}
    finally:
        driver.quit()


@pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None, reason="Debian chromium + chromium-driver not installed")
async def test_listen_approve_and_reject_in_headless_chromium(served: tuple[str, ReviewApp, Settings]) -> None:
    pytest.importorskip("selenium")
    url, _app, settings = served
    clusters = LearnStore(settings.learn.dir).load().clusters
    assert len(clusters) == 3
    keep, drop = clusters[0], clusters[1]
    assert keep.proposed is not None
    proposed = keep.proposed.value

    seen = await asyncio.to_thread(_browse, url, keep, proposed, drop)
    assert seen["rows"] == 3
    assert isinstance(seen["duration"], float) and seen["duration"] > 1.0
    assert seen["selected"] == proposed  # the catalogue's proposal is preselected
    assert f"{keep.id} approved as {proposed}" in str(seen["note"]) and "library v1" in str(seen["note"])
    assert seen["statuses"] == {
        f"row-{keep.id}": "approved",
        f"row-{drop.id}": "rejected",
        f"row-{clusters[2].id}": "open",
    }
    state = LearnStore(settings.learn.dir).load()
    by_id = {c.id: c for c in state.clusters}
    assert by_id[keep.id].approved_by == "olga" and by_id[drop.id].rejected_by == "olga"
    assert settings.announcements_path is not None
    assert f"learned-{keep.id}" in (settings.announcements_path / "announcements.yaml").read_text("utf-8")
    assert (settings.announcements_path / LEARNED_FILE).is_file()


async def test_the_page_over_plain_http_refuses_what_it_should(served: tuple[str, ReviewApp, Settings]) -> None:
    url, app, settings = served
    cid = LearnStore(settings.learn.dir).load().clusters[0].id
    status, headers, body = await asyncio.to_thread(_get, url + "/")
    assert status == 200 and cid in body.decode() and headers["Content-Type"].startswith("text/html")
    status, headers, body = await asyncio.to_thread(_get, f"{url}/clip/{cid}.wav")
    assert status == 200 and body[:4] == b"RIFF" and headers["Content-Type"] == "audio/wav" and len(body) > 16000
    assert (await asyncio.to_thread(_get, f"{url}/clip/c9999.wav"))[0] == 400
    assert (await asyncio.to_thread(_get, f"{url}/clip/..%2Fstate.wav"))[0] == 400
    assert (await asyncio.to_thread(_get, f"{url}/nothing"))[0] == 404
    form = {"cluster": cid, "class": "ann_blocked", "by": "olga", "token": "forged"}
    assert (await asyncio.to_thread(_post, url + "/approve", form))[0] == 403  # another page's form
    form["token"], form["by"] = app.token, ""
    status, _h, body = await asyncio.to_thread(_post, url + "/approve", form)
    assert status == 400 and b"who you are" in body
    assert (await asyncio.to_thread(_post, url + "/approve", {}, raw=b"x" * 20_000))[0] == 413
    form["by"] = "olga"
    status, headers, _b = await asyncio.to_thread(_post, url + "/approve", form)
    assert status == 303 and headers["Location"].startswith("/?note=")
    (c,) = [c for c in LearnStore(settings.learn.dir).load().clusters if c.id == cid]
    assert c.status == "approved" and c.approved_class == "ann_blocked" and c.approved_by == "olga"


async def test_the_serve_verb_listens_and_stops(learn_env: tuple[Path, Settings, list[Path]]) -> None:
    cfg, settings, _calls = learn_env
    await asyncio.to_thread(
        collect, settings.recording.dir, base_setup(settings), LearnStore(settings.learn.dir), now=NOW
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dialer", "--config", str(cfg), "announcements", "serve", "--port", "0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        assert line.startswith("review page: http://127.0.0.1:"), line
        url = line.split()[2]
        status, _h, body = await asyncio.to_thread(_get, url)
        assert status == 200 and b"3 cluster(s) to review" in body
    finally:
        proc.terminate()
        await proc.wait()
    assert proc.returncode is not None
