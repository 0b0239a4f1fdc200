"""Model weight files named by model cards: where to find them, checking them, downloading them.

Resolution order for each ``[[files]]`` entry of a card (first hit wins):

1. an explicit ``model_path`` — a file (used for the entry of the same name, or for the only
   entry of a one-file card; the other entries are looked up beside it) or a directory
   (``<dir>/<file>``, then ``<dir>/<card name>/<file>``);
2. ``$STREAMSEP_MODEL_DIR`` — ``<dir>/<card name>/<file>``, then ``<dir>/<file>``;
3. the user cache, ``$XDG_CACHE_HOME/streamsep/models/<card name>/<file>``
   (``~/.cache/streamsep/models/...`` when ``XDG_CACHE_HOME`` is unset).

Every resolved file is checked against the card's sha256; the result is remembered per
(path, size, mtime) so repeated loads cost a ``stat`` only.  :func:`pull_files` downloads a card's files
with :mod:`urllib` (``https://`` or ``file://``) to a temporary file, checks the digest and renames
it into place atomically, so a failed or corrupted download leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol


class FileSpec(Protocol):
    """One ``[[files]]`` entry of a model card."""

    name: str
    url: str
    sha256: str


class Card(Protocol):
    """What this module needs of a model card (:class:`streamsep.separators.cards.Card` is one)."""

    name: str
    files: tuple[FileSpec, ...]


ENV_MODEL_DIR = "STREAMSEP_MODEL_DIR"
_CHUNK = 1 << 16
# (resolved path, size, mtime_ns) -> sha256 hex digest
_DIGESTS: dict[tuple[str, int, int], str] = {}


class ModelFileError(RuntimeError):
    """A model file is missing, unreadable, or does not match its card's sha256."""


def cache_dir() -> Path:
    """The per-user model cache: ``$XDG_CACHE_HOME/streamsep/models`` or ``~/.cache/streamsep/models``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "streamsep" / "models"


def sha256_of(path: str | os.PathLike) -> str:
    """sha256 hex digest of a file, cached per (path, size, mtime)."""
    p = Path(path).resolve()
    try:
        st = p.stat()
    except OSError as exc:
        raise ModelFileError(f"cannot read model file {p}: {exc.strerror}") from exc
    key = (str(p), st.st_size, st.st_mtime_ns)
    digest = _DIGESTS.get(key)
    if digest is None:
        h = hashlib.sha256()
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(_CHUNK), b""):
                h.update(chunk)
        digest = h.hexdigest()
        _DIGESTS[key] = digest
    return digest


def verify(path: str | os.PathLike, sha256: str, card_name: str = "") -> Path:
    """Check ``path`` against ``sha256``; return the path, or raise :class:`ModelFileError`."""
    p = Path(path)
    got = sha256_of(p)
    if got != sha256.lower():
        hint = f"; run `streamsep models pull {card_name}` to fetch the right file" if card_name else ""
        raise ModelFileError(f"model file {p} has sha256 {got[:12]}…, the card expects {sha256[:12]}…{hint}")
    return p


def candidate_paths(card: Card, file_name: str, model_path: str | os.PathLike | None = None) -> list[Path]:
    """Where ``file_name`` of ``card`` is looked for, in resolution order."""
    out: list[Path] = []
    if model_path is not None:
        mp = Path(model_path).expanduser()
        if mp.is_dir():
            out += [mp / file_name, mp / card.name / file_name]
        elif mp.name == file_name or len(card.files) == 1:
            out.append(mp)
        else:
            out.append(mp.parent / file_name)
    env = os.environ.get(ENV_MODEL_DIR)
    if env:
        d = Path(env).expanduser()
        out += [d / card.name / file_name, d / file_name]
    out.append(cache_dir() / card.name / file_name)
    return out


def resolve(card: Card, model_path: str | os.PathLike | None = None, check: bool = True) -> dict[str, Path]:
    """Paths of all of ``card``'s files (name → path), sha256-checked when ``check``."""
    if model_path is not None and not Path(model_path).expanduser().exists():
        raise ModelFileError(f"model path {model_path} does not exist (given for '{card.name}')")
    found: dict[str, Path] = {}
    for entry in card.files:
        tried = candidate_paths(card, entry.name, model_path)
        hit = next((p for p in tried if p.is_file()), None)
        if hit is None:
            where = ", ".join(str(p) for p in tried)
            raise ModelFileError(
                f"model file {entry.name} for '{card.name}' not found (looked in {where}); "
                f"run `streamsep models pull {card.name}`"
            )
        found[entry.name] = verify(hit, entry.sha256, card.name) if check else hit
    return found


def _download(url: str, dest: Path, sha256: str, progress: bool) -> None:
    """Fetch ``url`` into ``dest`` atomically, checking ``sha256``; nothing is left on failure."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    h = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as resp:
            total = resp.headers.get("Content-Length")
            bar = None
            if progress:
                from tqdm import tqdm

                bar = tqdm(total=int(total) if total else None, unit="B", unit_scale=True, desc=dest.name, leave=False)
            try:
                for chunk in iter(lambda: resp.read(_CHUNK), b""):
                    out.write(chunk)
                    h.update(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
            finally:
                if bar is not None:
                    bar.close()
        got = h.hexdigest()
        if got != sha256.lower():
            raise ModelFileError(
                f"download of {url} has sha256 {got[:12]}…, the card expects {sha256[:12]}…; nothing was saved"
            )
        os.replace(tmp, dest)
    except ModelFileError:
        tmp.unlink(missing_ok=True)
        raise
    except (OSError, ValueError) as exc:  # URLError is an OSError; ValueError for malformed URLs
        tmp.unlink(missing_ok=True)
        raise ModelFileError(f"cannot download {url}: {getattr(exc, 'reason', exc)}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def pull_files(card: Card, dest_dir: str | os.PathLike | None = None, progress: bool = True) -> list[Path]:
    """Download the files of ``card`` (by name: :func:`streamsep.separators.cards.pull`).

    Files go to ``dest_dir`` (default: the user cache, ``<cache>/<card name>/``); files already
    there with the right sha256 are kept.  Returns the paths of all of the card's files.
    """
    target = Path(dest_dir).expanduser() if dest_dir is not None else cache_dir() / card.name
    paths: list[Path] = []
    for entry in card.files:
        dest = target / entry.name
        if not (dest.is_file() and sha256_of(dest) == entry.sha256.lower()):
            _download(entry.url, dest, entry.sha256, progress)
        paths.append(dest)
    return paths


def describe(card: Card, model_path: str | os.PathLike | None = None) -> Iterable[tuple[str, str]]:
    """(file name, status) for each of the card's files: the resolved path, or 'missing'."""
    for entry in card.files:
        hit = next((p for p in candidate_paths(card, entry.name, model_path) if p.is_file()), None)
        yield entry.name, str(hit) if hit is not None else "missing"
