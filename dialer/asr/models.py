"""Speech models on disk: the manifest (asr_models/manifest.json), download with verification,
and where the worker finds its model.

A download is trusted only when its size and SHA-256 match the manifest. An entry without a
recorded SHA-256 is refused unless the operator explicitly accepts an unverified model. The zip is
unpacked into a temporary directory beside the target and moved into place with one rename, so a
half-unpacked model never looks installed.
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
from typing import IO, Any, Protocol

from dialer.config import AsrSettings
from dialer.errors import AsrUnavailable, ConfigError

MODELS_DIR = Path(__file__).resolve().parent.parent.parent / "asr_models"
MANIFEST = MODELS_DIR / "manifest.json"
DEFAULT_MODEL = "vosk-model-small-ru-0.22"
CHUNK_BYTES = 1 << 16
SIZE_TOLERANCE = 0.25  # an approximate size may be off by this fraction
MARKER = ".dialer-model.json"  # written into an installed model: where it came from, its checksum


class ModelDownloadError(AsrUnavailable):
    """A model could not be downloaded, verified or unpacked."""


@dataclass(frozen=True, slots=True)
class ModelEntry:
    name: str
    url: str
    size_bytes: int | None
    size_approximate: bool
    sha256: str | None
    note: str = ""

    @property
    def verifiable(self) -> bool:
        return self.sha256 is not None


class Opener(Protocol):
    def __call__(self, url: str, timeout: float) -> IO[bytes]: ...


def _urlopen(url: str, timeout: float) -> IO[bytes]:
    resp: IO[bytes] = urllib.request.urlopen(url, timeout=timeout)
    return resp


def load_manifest(path: Path = MANIFEST) -> dict[str, ModelEntry]:
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
    out: dict[str, ModelEntry] = {}
    for i, m in enumerate(models):
        where = f"models[{i}]"
        if not isinstance(m, dict):
            raise ConfigError(f"{where}: expected an object", source=source)
        try:
            name, url = str(m["name"]), str(m["url"])
        except KeyError as exc:
            raise ConfigError(f"{where}: missing {exc.args[0]!r}", source=source) from None
        size = m.get("size_bytes")
        sha = m.get("sha256")
        if size is not None and (not isinstance(size, int) or size <= 0):
            raise ConfigError(f"{where} ({name}): size_bytes must be a positive integer", source=source)
        if sha is not None and (
            not isinstance(sha, str) or len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha.lower())
        ):
            raise ConfigError(f"{where} ({name}): sha256 must be 64 hex digits or null", source=source)
        if not url.startswith(("https://", "http://")):
            raise ConfigError(f"{where} ({name}): url must be http(s)", source=source)
        if name in out:
            raise ConfigError(f"{where}: duplicate model name {name!r}", source=source)
        out[name] = ModelEntry(
            name=name,
            url=url,
            size_bytes=size,
            size_approximate=bool(m.get("size_approximate", False)),
            sha256=sha.lower() if isinstance(sha, str) else None,
            note=str(m.get("note", "")),
        )
    return out


def installed_path(entry_name: str, dest_dir: Path = MODELS_DIR) -> Path | None:
    p = dest_dir / entry_name
    return p if (p / "am").is_dir() and (p / "conf").is_dir() else None


def resolve_model_path(settings: AsrSettings, dest_dir: Path = MODELS_DIR) -> Path | None:
    """The model directory the worker should load: the configured one when it exists, else the
    default model under ``asr_models/`` when installed, else None (run without ASR)."""
    if settings.model_path is not None and settings.model_path.is_dir():
        return settings.model_path
    return installed_path(DEFAULT_MODEL, dest_dir)


ProgressFn = Callable[[int, int | None], None]


def pull_model(
    entry: ModelEntry,
    dest_dir: Path = MODELS_DIR,
    *,
    opener: Opener = _urlopen,
    accept_unverified: bool = False,
    progress: ProgressFn | None = None,
    timeout_s: float = 60.0,
    force: bool = False,
) -> Path:
    """Download ``entry`` into ``dest_dir/<name>/`` and return that path.

    Verifies the size and SHA-256 recorded in the manifest; refuses an entry without a SHA-256
    unless ``accept_unverified``. Raises :class:`ModelDownloadError` with the reason."""
    target = dest_dir / entry.name
    if installed_path(entry.name, dest_dir) is not None and not force:
        return target
    if not entry.verifiable and not accept_unverified:
        raise ModelDownloadError(
            f"the manifest has no sha256 for {entry.name}: refusing to install an unverified model "
            "(pass --accept-unverified to install it anyway, then record its checksum in the manifest)"
        )
    dest_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_zip_name = tempfile.mkstemp(prefix=f".{entry.name}.", suffix=".zip.part", dir=dest_dir)
    tmp_zip = Path(tmp_zip_name)
    try:
        with os.fdopen(fd, "wb") as out:
            digest, size = _download(entry, out, opener, progress, timeout_s)
        _verify(entry, digest, size)
        _unpack(entry, tmp_zip, target, digest, size, force)
    finally:
        tmp_zip.unlink(missing_ok=True)
    return target


def _download(
    entry: ModelEntry, out: IO[bytes], opener: Opener, progress: ProgressFn | None, timeout_s: float
) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    try:
        resp = opener(entry.url, timeout_s)
    except urllib.error.HTTPError as exc:
        raise ModelDownloadError(f"{entry.url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ModelDownloadError(
            f"cannot reach {entry.url} ({reason}): no internet here? Download the zip on a connected "
            f"machine and unpack it into asr_models/{entry.name}/"
        ) from None
    total = _content_length(resp) or entry.size_bytes
    try:
        with resp:
            while True:
                block = resp.read(CHUNK_BYTES)
                if not block:
                    break
                h.update(block)
                out.write(block)
                size += len(block)
                if progress is not None:
                    progress(size, total)
    except OSError as exc:
        raise ModelDownloadError(f"download of {entry.url} broke off after {size} bytes: {exc}") from None
    return h.hexdigest(), size


def _content_length(resp: Any) -> int | None:
    headers = getattr(resp, "headers", None)
    value = headers.get("Content-Length") if headers is not None else None
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _verify(entry: ModelEntry, digest: str, size: int) -> None:
    if entry.size_bytes is not None:
        if entry.size_approximate:
            if abs(size - entry.size_bytes) > SIZE_TOLERANCE * entry.size_bytes:
                raise ModelDownloadError(
                    f"{entry.name}: got {size} bytes, expected about {entry.size_bytes}: not the model"
                )
        elif size != entry.size_bytes:
            raise ModelDownloadError(f"{entry.name}: got {size} bytes, the manifest says {entry.size_bytes}")
    if entry.sha256 is not None and digest != entry.sha256:
        raise ModelDownloadError(
            f"{entry.name}: checksum mismatch (sha256 {digest}, the manifest says {entry.sha256}); nothing installed"
        )


def _unpack(entry: ModelEntry, zip_path: Path, target: Path, digest: str, size: int, force: bool) -> None:
    staging = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", suffix=".unpack", dir=target.parent))
    try:
        try:
            with zipfile.ZipFile(zip_path) as zf:
                names = zf.namelist()
                for n in names:
                    p = PurePosixPath(n)
                    if p.is_absolute() or ".." in p.parts:
                        raise ModelDownloadError(f"{entry.name}: unsafe path {n!r} in the zip")
                zf.extractall(staging)
        except zipfile.BadZipFile as exc:
            raise ModelDownloadError(f"{entry.name}: the download is not a valid zip ({exc})") from None
        # Vosk zips hold one top directory named like the model; accept a flat zip too.
        tops = [p for p in staging.iterdir()]
        root = tops[0] if len(tops) == 1 and tops[0].is_dir() else staging
        if not (root / "am").is_dir() or not (root / "conf").is_dir():
            raise ModelDownloadError(f"{entry.name}: the zip holds no Vosk model (no am/ and conf/)")
        (root / MARKER).write_text(
            json.dumps({"name": entry.name, "url": entry.url, "sha256": digest, "size_bytes": size}, indent=2),
            encoding="utf-8",
        )
        if target.exists():
            if not force:
                raise ModelDownloadError(f"{target} exists but is not a complete model: remove it first")
            shutil.rmtree(target)
        os.replace(root, target)  # one rename: the model appears complete or not at all
    finally:
        shutil.rmtree(staging, ignore_errors=True)
