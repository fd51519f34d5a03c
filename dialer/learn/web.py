"""``dialer announcements serve``: a small local web page to listen to each cluster's clip and
approve it with a class or reject it. HTTP/1.1 on asyncio streams, 127.0.0.1 by default, one
request per connection; no framework, no JavaScript. Forms carry a per-process token so that
another web page open in the same browser cannot post approvals to it.

Routes: ``GET /`` the clusters; ``GET /clip/<cluster>.wav`` the clip; ``POST /approve``
(cluster, class, by, token); ``POST /reject`` (cluster, by, token) — both answer 303 to ``/``.
"""

from __future__ import annotations

import asyncio
import html
import logging
import secrets
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

from dialer.domain.fusion import ANNOUNCEMENT_CLASSES
from dialer.domain.model import CallClass
from dialer.errors import DialerError, InputError
from dialer.learn.cluster import Cluster, ClusterStatus
from dialer.learn.review import (
    approve_cluster,
    carriers_text,
    clip_wav,
    find,
    ordered,
    parse_class,
    proposal_text,
    reject_cluster,
)
from dialer.learn.store import LearnStore

log = logging.getLogger(__name__)

MAX_BODY = 16 * 1024
MAX_HEADER_LINES = 100
READ_TIMEOUT_S = 10.0
_CLASSES = sorted(c.value for c in [*ANNOUNCEMENT_CLASSES, CallClass.IVR, CallClass.SIT_UNRECOGNISED])

Response = tuple[int, str, bytes, dict[str, str]]


class ReviewApp:
    """The page's logic: a request in, a response out (the server below is only transport)."""

    def __init__(self, store: LearnStore, library_dir: Path, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.library_dir = library_dir
        self.clock = clock
        self.token = secrets.token_urlsafe(16)
        self._lock = asyncio.Lock()  # one change at a time: state.json is read, changed and written whole

    async def handle(self, method: str, target: str, body: bytes) -> Response:
        url = urlsplit(target)
        path = unquote(url.path)
        try:
            if method == "GET" and path == "/":
                note = parse_qs(url.query).get("note", [""])[0]
                page = await asyncio.to_thread(self.page, note)  # reads the state from disk
                return 200, "text/html; charset=utf-8", page.encode(), {}
            if method == "GET" and path.startswith("/clip/") and path.endswith(".wav"):
                return await self._clip(path[len("/clip/") : -len(".wav")])
            if method == "POST" and path in ("/approve", "/reject"):
                return await self._act(path[1:], parse_qs(body.decode("utf-8", "replace")))
            if path in ("/", "/approve", "/reject"):
                return _text(405, "method not allowed")
            return _text(404, "not found")
        except DialerError as exc:
            return _text(400, str(exc))

    async def _clip(self, cluster_id: str) -> Response:
        state = await asyncio.to_thread(self.store.load)
        wav = await asyncio.to_thread(clip_wav, self.store, find(state.clusters, cluster_id))
        if wav is None:
            return _text(404, "the clip is gone from the learning store")
        return 200, "audio/wav", wav, {}

    async def _act(self, what: str, form: dict[str, list[str]]) -> Response:
        def field(name: str) -> str:
            return form.get(name, [""])[0].strip()

        if not secrets.compare_digest(field("token"), self.token):
            return _text(403, "stale or foreign form: reload the page")
        cluster, by = field("cluster"), field("by")
        if not by:
            raise InputError("say who you are (the «by» field): the library records who approved what")
        async with self._lock:
            if what == "approve":
                cls = parse_class(field("class"))
                done = await asyncio.to_thread(
                    approve_cluster, self.store, self.library_dir, cluster, cls, by, self.clock()
                )
                note = f"{cluster} approved as {cls.value}: {done.name} (library v{done.version})"
            else:
                await asyncio.to_thread(reject_cluster, self.store, self.library_dir, cluster, by, self.clock())
                note = f"{cluster} rejected"
        log.info("review: %s by %s", note, by)
        return 303, "text/plain; charset=utf-8", b"", {"Location": "/?note=" + quote(note)}

    def page(self, note: str = "") -> str:
        clusters = ordered(self.store.load().clusters, everything=True)
        rows = "\n".join(self._row(c) for c in clusters) or '<tr><td colspan="8">nothing collected yet</td></tr>'
        banner = f'<p id="note" class="note">{html.escape(note)}</p>' if note else ""
        return _PAGE.format(banner=banner, rows=rows, n_open=sum(c.status is ClusterStatus.OPEN for c in clusters))

    def _row(self, c: Cluster) -> str:
        e = html.escape
        cid = e(c.id)
        if c.status is ClusterStatus.OPEN:
            proposed = c.proposed.value if c.proposed is not None else ""
            options = "".join(
                f'<option value="{v}"{" selected" if v == proposed else ""}>{v}</option>' for v in _CLASSES
            )
            token = e(self.token)
            actions = (
                f'<form method="post" action="/approve" class="approve">'
                f'<input type="hidden" name="cluster" value="{cid}"><input type="hidden" name="token" value="{token}">'
                f'<select name="class" id="class-{cid}">{options}</select> '
                f'<input name="by" id="by-{cid}" placeholder="your name" required> '
                f'<button type="submit" id="approve-{cid}">approve</button></form>'
                f'<form method="post" action="/reject" class="reject">'
                f'<input type="hidden" name="cluster" value="{cid}"><input type="hidden" name="token" value="{token}">'
                f'<input name="by" id="rejectby-{cid}" placeholder="your name" required> '
                f'<button type="submit" id="reject-{cid}">reject</button></form>'
            )
        elif c.status is ClusterStatus.APPROVED:
            actions = e(f"in the library as {c.library_name} (v{c.library_version}), by {c.approved_by}")
        else:
            actions = e(f"rejected by {c.rejected_by}")
        status = c.status.value + (f" {c.approved_class}" if c.approved_class else "")
        return (
            f'<tr id="row-{cid}" data-status="{e(c.status.value)}"><td>{cid}</td><td class="status">{e(status)}</td>'
            f"<td>{c.count}</td><td>{e(_when(c.first_seen))}<br>{e(_when(c.last_seen))}</td>"
            f"<td>{e(carriers_text(c))}</td><td>{e(proposal_text(c))}</td><td>{e(c.best_text or '-')}</td>"
            f'<td><audio controls preload="none" src="/clip/{cid}.wav"></audio>{actions}</td></tr>'
        )


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>dialer: unknown announcements</title>
<style>body{{font-family:sans-serif;margin:1em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px;vertical-align:top}}.note{{background:#efe;padding:4px}}
form{{margin:2px 0}}</style></head>
<body><h1>Unknown announcements</h1>{banner}
<p>{n_open} cluster(s) to review. Listen, then approve with the class the recording announces (it becomes a
fingerprint of the library) or reject it. A not-working class settles contacts as «Некорректный контакт».</p>
<table id="clusters"><tr><th>cluster</th><th>status</th><th>calls</th><th>first / last seen</th>
<th>carriers</th><th>proposed</th><th>best transcript</th><th>clip and decision</th></tr>
{rows}
</table></body></html>
"""


def _when(iso: str) -> str:
    return iso[:16].replace("T", " ")


def _text(status: int, message: str) -> Response:
    return status, "text/plain; charset=utf-8", (message + "\n").encode(), {}


_REASONS = {
    200: "OK",
    303: "See Other",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
}


async def _serve_one(app: ReviewApp, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        async with asyncio.timeout(READ_TIMEOUT_S):
            request = (await reader.readline()).decode("latin-1").split()
            headers: dict[str, str] = {}
            for _ in range(MAX_HEADER_LINES):
                line = (await reader.readline()).decode("latin-1").strip()
                if not line:
                    break
                k, _sep, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            length = int(headers.get("content-length", "0") or 0)
            if len(request) < 2:
                resp = _text(400, "bad request")
            elif length > MAX_BODY:
                resp = _text(413, "too large")
            else:
                body = await reader.readexactly(length) if length > 0 else b""
                resp = await app.handle(request[0].upper(), request[1], body)
        status, ctype, payload, extra = resp
        head = [
            f"HTTP/1.1 {status} {_REASONS.get(status, '')}",
            f"Content-Type: {ctype}",
            f"Content-Length: {len(payload)}",
            "Connection: close",
            "Cache-Control: no-store",
        ]
        head += [f"{k}: {v}" for k, v in extra.items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload)
        await writer.drain()
    except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, ValueError):
        pass  # a client that went away or spoke nonsense: nothing to answer
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except ConnectionError:
            pass


async def start(app: ReviewApp, host: str, port: int) -> asyncio.Server:
    """Listen; the caller owns the server (``async with``/``close``)."""

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _serve_one(app, reader, writer)

    return await asyncio.start_server(client, host, port)
