"""Audio files and resampling: reading, atomic writing, block streaming, soxr resampling.

Conventions: samples are float32 in [-1, 1] (nominal), 1-D for mono or ``(n, channels)``;
rates in Hz; lengths and delays in samples.  Every problem with a file raises
:class:`AudioFileError` with a one-line message that starts with the file's path.

Multichannel files are mixed to mono by **averaging** the channels (not summing), so a stereo file
with the same signal in both channels reads back as that signal.

Writing is atomic: data go to a temporary file in the destination's directory, which is renamed
over the destination (:func:`os.replace`) only when everything succeeded; on any failure neither an
output file nor the temporary file is left behind, and an existing destination is untouched.  On
Linux the temporary file is anonymous (``O_TMPFILE``) until that rename, so even SIGKILL leaves
nothing behind.
"""

from __future__ import annotations

import functools
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

__all__ = [
    "AudioFileError",
    "read_audio",
    "write_audio",
    "resample",
    "align",
    "StreamingResampler",
    "FileStreamReader",
    "AtomicStreamWriter",
    "audio_info",
    "output_format",
    "anonymous_scratch",
]

#: extension -> (libsndfile major format, default subtype)
FORMATS: dict[str, tuple[str, str]] = {
    ".wav": ("WAV", "PCM_16"),
    ".flac": ("FLAC", "PCM_16"),
    ".ogg": ("OGG", "VORBIS"),
    ".oga": ("OGG", "VORBIS"),
    ".aif": ("AIFF", "PCM_16"),
    ".aiff": ("AIFF", "PCM_16"),
    ".au": ("AU", "PCM_16"),
    ".caf": ("CAF", "PCM_16"),
    ".w64": ("W64", "PCM_16"),
    ".rf64": ("RF64", "PCM_16"),
    ".mp3": ("MP3", "MPEG_LAYER_III"),  # only where this libsndfile writes MP3 (checked per use)
}

RESAMPLE_QUALITY = "HQ"


class AudioFileError(ValueError):
    """A file that cannot be read or written as audio; the message names the file and the problem."""


def _one_line(msg: str) -> str:
    return " ".join(str(msg).split())


def _sndfile_message(err: Exception) -> str:
    """The libsndfile reason of a soundfile error, without the 'Error opening …' prefix."""
    msg = getattr(err, "error_string", None) or str(err)
    return _one_line(msg)


def _check_rate(rate: int, what: str = "rate") -> int:
    if not isinstance(rate, (int, np.integer)) or isinstance(rate, bool) or rate <= 0:
        raise ValueError(f"{what} must be a positive integer number of Hz, got {rate!r}")
    return int(rate)


def _to_mono(data: np.ndarray) -> np.ndarray:
    """(n, ch) → (n,) by averaging the channels (float32)."""
    if data.shape[1] == 1:
        return np.ascontiguousarray(data[:, 0])
    # average in float64: finite samples near ±3.4e38 would overflow a float32 sum to ±inf
    return data.mean(axis=1, dtype=np.float64).astype(np.float32)


def _first_nonfinite(x: np.ndarray) -> int | None:
    bad = ~np.isfinite(x)
    if not bad.any():
        return None
    return int(np.argmax(bad.reshape(len(x), -1).any(axis=1)))


def _open_info(path: Path) -> sf._SoundFileInfo:
    """soundfile.info with the library's errors turned into AudioFileError."""
    if not path.exists():
        raise AudioFileError(f"{path}: file not found")
    if path.is_dir():
        raise AudioFileError(f"{path}: not a readable audio file (is a directory)")
    try:
        info = sf.info(str(path))
    except (sf.SoundFileError, RuntimeError, OSError) as err:
        raise AudioFileError(f"{path}: not a readable audio file ({_sndfile_message(err)})") from err
    if info.frames == 0:
        raise AudioFileError(f"{path}: empty audio (0 samples)")
    return info


def audio_info(path: str | os.PathLike) -> sf._SoundFileInfo:
    """Header of an audio file (rate, frames, channels, subtype) without reading its samples.

    Raises :class:`AudioFileError` for missing, empty, corrupt or unsupported files.
    """
    return _open_info(Path(path))


def read_audio(path: str | os.PathLike, rate: int | None = None, mono: bool = True) -> tuple[np.ndarray, int]:
    """Read an audio file as float32.

    Returns ``(x, rate)``: ``x`` is 1-D when ``mono`` (channels averaged), else ``(n, channels)``.
    With ``rate`` given and different from the file's, the audio is resampled with soxr ('HQ').
    Raises :class:`AudioFileError` for missing, empty, corrupt or unsupported files and for files
    containing NaN/inf samples.
    """
    path = Path(path)
    if rate is not None:
        rate = _check_rate(rate)
    _open_info(path)
    try:
        data, file_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError, OSError) as err:
        raise AudioFileError(f"{path}: not a readable audio file ({_sndfile_message(err)})") from err
    except MemoryError:  # a header claiming far more frames than the file (or memory) holds
        raise AudioFileError(
            f"{path}: header claims more samples than fit in memory (corrupt header, or use `process --stream`)"
        ) from None
    if data.shape[0] == 0:
        raise AudioFileError(f"{path}: empty audio (0 samples)")
    bad = _first_nonfinite(data)
    if bad is not None:
        raise AudioFileError(f"{path}: non-finite sample (NaN or inf) at frame {bad}")
    x = _to_mono(data) if mono else data
    if rate is not None and rate != file_rate:
        x = resample(x, file_rate, rate)
        file_rate = rate
    return x, int(file_rate)


def resample(x: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample ``x`` (1-D, or ``(n, channels)``) from ``from_rate`` to ``to_rate`` Hz with soxr 'HQ'.

    The output is float32, time-aligned with the input (soxr compensates its filter delay) and
    has ``round(n · to_rate / from_rate)`` samples.
    """
    from_rate, to_rate = _check_rate(from_rate, "from_rate"), _check_rate(to_rate, "to_rate")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim not in (1, 2):
        raise ValueError(f"resample: expected a 1-D or (n, channels) array, got shape {x.shape}")
    if from_rate == to_rate:
        return x.copy()
    return np.ascontiguousarray(soxr.resample(x, from_rate, to_rate, quality=RESAMPLE_QUALITY), dtype=np.float32)


def align(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Trim ``a`` and ``b`` (along axis 0) to the shorter of the two lengths."""
    n = min(len(a), len(b))
    return a[:n], b[:n]


# --------------------------------------------------------------------------------------------
# writing


def writable_extensions() -> list[str]:
    """Output extensions this libsndfile can write (with their default subtype)."""
    return [ext for ext, (fmt, sub) in FORMATS.items() if sf.check_format(fmt, sub)]


def output_format(path: str | os.PathLike, subtype: str | None = None) -> tuple[str, str]:
    """(libsndfile major format, subtype) for writing ``path``; raises :class:`AudioFileError` when the
    extension or the subtype cannot be written here.  Nothing is opened or created."""
    return _format_for(Path(path), subtype)


def _format_for(path: Path, subtype: str | None) -> tuple[str, str]:
    ext = path.suffix.lower()
    if ext not in FORMATS or not sf.check_format(*FORMATS[ext]):
        raise AudioFileError(
            f"{path}: unsupported extension {path.suffix!r} for writing (use one of {', '.join(writable_extensions())})"
        )
    fmt, default = FORMATS[ext]
    subtype = (subtype or default).upper()
    if not sf.check_format(fmt, subtype):
        raise AudioFileError(f"{path}: subtype {subtype!r} is not available for {fmt} files")
    return fmt, subtype


def _is_integer_subtype(subtype: str) -> bool:
    return subtype.startswith("PCM_") or subtype in ("ULAW", "ALAW")


def _prepare_block(path: Path, x: np.ndarray, subtype: str, channels: int | None = None, offset: int = 0) -> np.ndarray:
    """Validate and convert one block for writing: float32, finite, clipped for integer subtypes."""
    x = np.asarray(x)
    if x.ndim not in (1, 2):
        raise AudioFileError(f"{path}: expected a 1-D or (n, channels) array, got shape {x.shape}")
    if channels is not None:
        got = 1 if x.ndim == 1 else x.shape[1]
        if got != channels:
            raise AudioFileError(f"{path}: block has {got} channels, the file has {channels}")
    x = x.astype(np.float32, copy=False)
    bad = _first_nonfinite(x)
    if bad is not None:
        raise AudioFileError(f"{path}: non-finite sample (NaN or inf) at frame {offset + bad}")
    if _is_integer_subtype(subtype):
        x = np.clip(x, -1.0, 1.0)
    return x


@functools.lru_cache(maxsize=1)
def _umask() -> int:
    """The process umask (read once; os.umask can only be read by setting it)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


class _TempFile:
    """Where an output is written before it is renamed into place.

    On Linux the data go to an *anonymous* file in the destination's folder (``O_TMPFILE``): it has
    no name until :meth:`publish` links it under a hidden ``.NAME.*.part`` name and renames that over
    the destination, so a process killed even by SIGKILL leaves nothing behind.  Where the folder's
    filesystem cannot do that, a named hidden ``.NAME.*.part`` file is used (removed on any error;
    SIGKILL can leave it).  ``name`` is the path libsndfile opens.
    """

    def __init__(self, path: Path) -> None:
        directory = path.parent if str(path.parent) else Path(".")
        if not directory.is_dir():
            raise AudioFileError(f"{path}: directory {directory} does not exist")
        self.path, self.directory = path, directory
        self.fd: int | None = None
        self.named: Path | None = None
        flag = getattr(os, "O_TMPFILE", None)
        if flag is not None and os.path.isdir("/proc/self/fd"):
            try:
                self.fd = os.open(directory, flag | os.O_RDWR, 0o600)
            except OSError:  # a filesystem without O_TMPFILE
                self.fd = None
        if self.fd is not None:
            self.name = f"/proc/self/fd/{self.fd}"
        else:
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=directory)
            os.close(fd)
            self.named = Path(tmp)
            self.name = str(tmp)

    def sync(self) -> None:
        """Flush the written data to disk."""
        if self.fd is not None:
            os.fsync(self.fd)
        else:
            with open(self.name, "rb+") as fh:
                os.fsync(fh.fileno())

    def publish(self) -> None:
        """Give the file the permissions a new file would get and rename it over the destination."""
        path = self.path
        mode = (path.stat().st_mode & 0o777) if path.exists() else (0o666 & ~_umask())
        if self.fd is not None:
            # linkat(AT_SYMLINK_FOLLOW) gives the anonymous file a name (plain link() would link the
            # /proc symlink itself); a directory descriptor makes os.link use linkat
            dfd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
            try:
                for _ in range(100):
                    cand = f".{path.name}.{os.urandom(4).hex()}.part"
                    try:
                        os.link(self.name, cand, dst_dir_fd=dfd, follow_symlinks=True)
                    except FileExistsError:
                        continue
                    self.named = self.directory / cand
                    break
                else:
                    raise OSError(f"{path}: no free temporary name")
            finally:
                os.close(dfd)
        os.chmod(self.named, mode)
        os.replace(self.named, path)
        self.named = None
        self.close()

    def close(self) -> None:
        """Discard whatever was not published (an anonymous file vanishes with its descriptor)."""
        if self.named is not None:
            try:
                self.named.unlink()
            except FileNotFoundError:
                pass
            self.named = None
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def anonymous_scratch(directory: str | os.PathLike) -> _TempFile:
    """A scratch file in ``directory`` that is never published: write and read it through ``.name``,
    then ``.close()`` it.  Anonymous where the filesystem allows (nothing left even after SIGKILL)."""
    return _TempFile(Path(directory) / "scratch")


def write_audio(path: str | os.PathLike, x: np.ndarray, rate: int, subtype: str | None = None) -> None:
    """Write ``x`` (1-D or ``(n, channels)``, float) to ``path`` atomically.

    Format from the extension (.wav, .flac, .ogg); default subtype PCM_16 for .wav and .flac,
    VORBIS for .ogg ('FLOAT', 'PCM_24', … on request).  Samples are clipped to [-1, 1] only for
    integer subtypes.  Empty or non-finite data raise :class:`AudioFileError` and write nothing.
    """
    path = Path(path)
    rate = _check_rate(rate)
    fmt, subtype = _format_for(path, subtype)
    data = _prepare_block(path, x, subtype)
    if data.shape[0] == 0:
        raise AudioFileError(f"{path}: empty audio (0 samples), nothing to write")
    tmp = _TempFile(path)
    try:
        # write by name (libsndfile's own I/O): a short write is an error code, not an exception
        # raised inside a cffi callback
        sf.write(tmp.name, data, rate, subtype=subtype, format=fmt)
        tmp.sync()
        tmp.publish()
    except BaseException as err:
        tmp.close()
        if isinstance(err, (sf.SoundFileError, OSError, RuntimeError, AssertionError)):
            raise AudioFileError(f"{path}: write failed ({_sndfile_message(err)})") from err
        raise


class AtomicStreamWriter:
    """Context manager writing blocks to ``path`` through a temporary file.

    On a clean exit the temporary file is renamed over ``path``; if the block raises, the temporary
    file is deleted and ``path`` is left as it was.  ``write`` takes 1-D (mono) or ``(n, channels)``
    float blocks; samples are clipped to [-1, 1] for integer subtypes, non-finite samples raise.
    """

    def __init__(self, path: str | os.PathLike, rate: int, subtype: str | None = None, channels: int = 1) -> None:
        self.path = Path(path)
        self.rate = _check_rate(rate)
        self.format, self.subtype = _format_for(self.path, subtype)
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        self.channels = int(channels)
        self.frames = 0  #: frames written so far
        self._tmp: _TempFile | None = None
        self._sf: sf.SoundFile | None = None

    def __enter__(self) -> AtomicStreamWriter:
        self._tmp = _TempFile(self.path)
        try:
            self._sf = sf.SoundFile(
                self._tmp.name,
                "w",
                samplerate=self.rate,
                channels=self.channels,
                subtype=self.subtype,
                format=self.format,
            )
        except BaseException:
            self._tmp.close()
            raise
        return self

    def write(self, block: np.ndarray) -> None:
        """Append one block (1-D for mono, or ``(n, channels)``)."""
        if self._sf is None:
            raise RuntimeError(f"{self.path}: AtomicStreamWriter.write outside its 'with' block")
        data = _prepare_block(self.path, block, self.subtype, self.channels, self.frames)
        try:
            self._sf.write(data)
        except (sf.SoundFileError, OSError, RuntimeError, AssertionError) as err:
            raise AudioFileError(f"{self.path}: write failed ({_sndfile_message(err)})") from err
        self.frames += data.shape[0]

    def __exit__(self, exc_type, exc, tb) -> None:
        sfile, tmp = self._sf, self._tmp
        self._sf, self._tmp = None, None
        try:
            if sfile is not None:
                try:
                    sfile.close()
                except (sf.SoundFileError, OSError, RuntimeError, AssertionError) as err:
                    if exc_type is None:
                        raise AudioFileError(f"{self.path}: write failed ({_sndfile_message(err)})") from err
            if exc_type is None:
                tmp.sync()
                tmp.publish()
        finally:
            if tmp is not None:
                tmp.close()


# --------------------------------------------------------------------------------------------
# reading long files in blocks


#: no real file holds more samples per byte than this (FLAC of digital silence stays below ~400)
MAX_FRAMES_PER_BYTE = 10_000


class FileStreamReader:
    """Iterate over a (long) audio file in float32 blocks of ``block`` samples, in constant memory.

    Channels are averaged when ``mono`` (1-D blocks), else blocks are ``(n, channels)``.  The last block may be shorter (it is not padded).  ``rate`` (Hz),
    ``frames`` (samples) and ``channels`` describe the file.  Missing/empty/corrupt files raise
    :class:`AudioFileError` at construction; a block with NaN/inf raises it during iteration.
    """

    def __init__(self, path: str | os.PathLike, block: int, mono: bool = True) -> None:
        if not isinstance(block, (int, np.integer)) or block <= 0:
            raise ValueError(f"block must be a positive number of samples, got {block!r}")
        self.path = Path(path)
        self.block = int(block)
        self.mono = bool(mono)
        info = _open_info(self.path)
        self.rate = int(info.samplerate)
        self.frames = int(info.frames)
        self.channels = int(info.channels)
        size = max(1, self.path.stat().st_size)
        if self.frames > MAX_FRAMES_PER_BYTE * size:
            raise AudioFileError(
                f"{self.path}: header claims {self.frames} samples in a {size}-byte file (corrupt header)"
            )
        self.frames_read = 0  #: samples actually read so far (may end below ``frames``)

    def __len__(self) -> int:
        """Number of blocks the iteration yields."""
        return math.ceil(self.frames / self.block)

    def __iter__(self) -> Iterator[np.ndarray]:
        offset = 0
        try:
            blocks = sf.blocks(str(self.path), blocksize=self.block, dtype="float32", always_2d=True)
            for data in blocks:
                bad = _first_nonfinite(data)
                if bad is not None:
                    raise AudioFileError(f"{self.path}: non-finite sample (NaN or inf) at frame {offset + bad}")
                offset += data.shape[0]
                self.frames_read = offset
                yield _to_mono(data) if self.mono else data
                if data.shape[0] < self.block:  # a short read is the end, whatever the header says
                    return
        except (sf.SoundFileError, RuntimeError, OSError) as err:
            raise AudioFileError(f"{self.path}: not a readable audio file ({_sndfile_message(err)})") from err


# --------------------------------------------------------------------------------------------
# streaming resampling


@functools.lru_cache(maxsize=64)
def _worst_backlog(in_rate: int, out_rate: int, quality: str) -> int:
    """Largest shortfall ``floor(N·out/in) − produced(N)`` of a soxr stream over input counts N.

    soxr's output count after N input samples does not depend on how the input was chunked
    (checked for 1/160/441/1024-sample chunks), so feeding single samples visits every N.  The
    pattern repeats with soxr's internal block; its maximum is reached well inside the first second
    for every rate pair we measured, and we simulate two seconds (at least 8192 samples).
    """
    stream = soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32", quality=quality)
    one = np.zeros(1, np.float32)
    produced, worst = 0, 0
    for n in range(1, max(2 * in_rate, 8192) + 1):
        produced += len(stream.resample_chunk(one))
        worst = max(worst, n * out_rate // in_rate - produced)
    return worst


class StreamingResampler:
    """Streaming soxr resampler for one mono float32 stream.

    Two ways to use it:

    * :meth:`process` returns whatever soxr produced (variable length).  The concatenated output is
      time-aligned with the input (soxr trims its filter delay: an impulse at input sample ``p``
      lands at output sample ``p · out_rate / in_rate``), but it *lags*: after ``N`` input samples
      only ``produced(N)`` ≤ ``N · out_rate / in_rate`` samples have come out; :attr:`backlog`
      tells the current shortfall.
    * :meth:`process_fixed` returns exactly ``floor(N · out_rate / in_rate)`` samples in total after
      ``N`` input samples (a constant-rate stream, what a device callback needs).  It starts with
      :attr:`delay` zeros, so an impulse at input sample ``p`` comes out at output sample
      ``p · out_rate / in_rate + delay`` exactly.

    :attr:`delay` (output samples) is the smallest prefill with which soxr never runs short,
    whatever the chunk sizes (see :func:`_worst_backlog`).  Measured with 'HQ': 8k→16k 1852,
    48k→16k 585, 16k→48k 1757, 44.1k→16k 643, 16k→44.1k 2548.  Should soxr ever run short anyway,
    :meth:`process_fixed` outputs zeros for the missing samples, drops them when they arrive late
    (so the timing stays exact) and counts them in :attr:`underruns`.  Use one of the two
    methods per instance, not both.
    """

    def __init__(self, in_rate: int, out_rate: int, quality: str = RESAMPLE_QUALITY) -> None:
        self.in_rate = _check_rate(in_rate, "in_rate")
        self.out_rate = _check_rate(out_rate, "out_rate")
        self.quality = quality
        self._stream = soxr.ResampleStream(self.in_rate, self.out_rate, 1, dtype="float32", quality=quality)
        #: constant delay of :meth:`process_fixed`, output samples
        self.delay: int = _worst_backlog(self.in_rate, self.out_rate, quality)
        self.underruns = 0  #: output samples that process_fixed had to zero-fill
        self._n_in = 0  # input samples consumed
        self._n_fixed = 0  # samples returned by process_fixed (prefill included)
        self._buf = np.zeros(0, np.float32)  # soxr output not yet returned by process_fixed
        self._buf_start = 0  # soxr-stream index of _buf[0]
        self._mode: str | None = None  # "variable" or "fixed", fixed by the first call

    def _use(self, mode: str) -> None:
        if self._mode is None:
            self._mode = mode
        elif self._mode != mode:
            raise RuntimeError(
                f"StreamingResampler: process and process_fixed mixed on one stream (this one is in {self._mode} mode)"
            )

    @property
    def ratio(self) -> float:
        """out_rate / in_rate."""
        return self.out_rate / self.in_rate

    @property
    def backlog(self) -> float:
        """Output samples soxr still owes for the input given so far (soxr's ``delay()``)."""
        return float(self._stream.delay())

    def _chunk(self, chunk: np.ndarray) -> np.ndarray:
        chunk = np.ascontiguousarray(chunk, dtype=np.float32)
        if chunk.ndim != 1:
            raise ValueError(f"StreamingResampler: expected a 1-D mono chunk, got shape {chunk.shape}")
        return chunk

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """Feed ``chunk`` (1-D, in_rate); return the output soxr produced (variable length)."""
        self._use("variable")
        chunk = self._chunk(chunk)
        self._n_in += len(chunk)
        return self._stream.resample_chunk(chunk)

    def flush(self) -> np.ndarray:
        """End of stream: return soxr's remaining output (and any buffered fixed-rate samples)."""
        tail = self._stream.resample_chunk(np.zeros(0, np.float32), last=True)
        if self._mode != "fixed":
            return tail
        return self._take_fixed(tail, None)

    def process_fixed(self, chunk: np.ndarray) -> np.ndarray:
        """Feed ``chunk``; return the next ``floor(N·ratio) − (returned so far)`` output samples.

        The output stream is the resampled input delayed by exactly :attr:`delay` samples.
        """
        self._use("fixed")
        chunk = self._chunk(chunk)
        self._n_in += len(chunk)
        produced = self._stream.resample_chunk(chunk)
        return self._take_fixed(produced, self._n_in * self.out_rate // self.in_rate)

    def _take_fixed(self, produced: np.ndarray, target: int | None) -> np.ndarray:
        """Append soxr output to the buffer and return samples up to total ``target`` (None: all)."""
        if len(produced):
            self._buf = np.concatenate([self._buf, produced]) if len(self._buf) else produced
        # samples of the soxr stream that arrived after we had zero-filled their slot
        first_needed = max(self._n_fixed - self.delay, 0)
        late = min(max(first_needed - self._buf_start, 0), len(self._buf))
        if late:
            self._buf = self._buf[late:]
            self._buf_start += late
        if target is None:
            target = self._n_fixed + max(self.delay - self._n_fixed, 0) + len(self._buf)
        count = max(target - self._n_fixed, 0)
        out = np.zeros(count, np.float32)
        # output index j carries soxr sample j − delay
        start = self._n_fixed
        lead = min(max(self.delay - start, 0), count)  # prefill zeros
        take = min(count - lead, len(self._buf))
        out[lead : lead + take] = self._buf[:take]
        self._buf = self._buf[take:]
        self._buf_start += take
        short = count - lead - take
        if short:
            self.underruns += short
        self._n_fixed = target
        return out
