"""Preallocated single-producer / single-consumer sample rings shared by the audio thread and the
worker, and the audio callback itself, compiled (numba ``cfunc``) so that it never needs the GIL.

Why the callback is compiled
----------------------------
A Python audio callback needs the GIL.  PyTorch releases the GIL around every operator and takes it
back straight after; a worker running thousands of small operators per block re-takes the GIL
before a waiting thread wakes up, and CPython's hand-over (it only forces a switch when *no*
switch happened for a whole interval) then never triggers: measured on the JACK test, the
``quality`` preset at 8 steps × 8 candidates delayed a Python callback by up to 30–40 ms (10 ms
periods): JACK xruns even though the worker was fast enough on average.  The compiled callback
below runs without the GIL, so inference cannot delay it at all (measured: 0 xruns, see
docs/LIVE.md).

Rings and memory ordering
-------------------------
Samples are addressed by an *absolute* index that only grows; slot ``i & (capacity − 1)`` of a
preallocated float32 array holds sample ``i`` (capacities are powers of two).  Each ring has two
int64 counters in a shared header array: ``written`` (producer only) and ``read`` (consumer only).
The producer copies samples, issues a *release* fence and then stores ``written``; the consumer
loads ``written``, issues an *acquire* fence and then copies.  The fences come from LLVM
(:func:`release_fence`, :func:`acquire_fence`), so the protocol holds on weakly ordered CPUs (ARM)
as well as on x86-64; aligned 8-byte loads and stores are atomic on both.  No locks anywhere.

Header layout (:data:`HDR_SIZE` int64 slots) for the live host, see :func:`new_header` and
:func:`audio_callback_core`.  Units: indices and lengths in samples.
"""

from __future__ import annotations

import ctypes

import numpy as np
from numba import carray, cfunc, njit, types
from numba.core import cgutils  # noqa: F401  (imported for numba's extension machinery)
from numba.extending import intrinsic


class RingError(ValueError):
    """A ring was created or used with impossible sizes."""


# -- fences and raw pointers (LLVM intrinsics) ------------------------------------------------------
@intrinsic
def _fence(typingctx, kind):
    """``fence acquire`` (kind 0) or ``fence release`` (kind 1); kind must be a literal."""
    lit = getattr(kind, "literal_value", None)
    if lit not in (0, 1):
        return None
    ordering = "acquire" if lit == 0 else "release"

    def codegen(context, builder, signature, args):
        builder.fence(ordering)
        return context.get_dummy_value()

    return types.void(kind), codegen


@njit(cache=True)
def release_fence() -> None:
    """Stores before this call become visible to other threads before stores after it."""
    _fence(1)


@njit(cache=True)
def acquire_fence() -> None:
    """Loads after this call see at least what was published before the loads before it."""
    _fence(0)


@intrinsic
def _as_f32_ptr(typingctx, addr):
    """An int64 address or a void pointer as ``float32*``."""

    def codegen(context, builder, signature, args):
        ty = context.get_value_type(types.CPointer(types.float32))
        if isinstance(addr, types.Integer):
            return builder.inttoptr(args[0], ty)
        return builder.bitcast(args[0], ty)

    return types.CPointer(types.float32)(addr), codegen


@intrinsic
def _as_i64_ptr(typingctx, addr):
    """A void pointer as ``int64*``."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.CPointer(types.int64)))

    return types.CPointer(types.int64)(addr), codegen


# -- the Python-side ring ----------------------------------------------------------------------------
def _pow2(n: int) -> int:
    return 1 << max(0, int(n - 1).bit_length())


class SampleRing:
    """A mono float32 ring addressed by absolute sample index (see the module docstring).

    ``counters`` is an int64 array of two slots ``[written, read]`` (a view into a shared header)
    or None for private counters.  The producer appends with :meth:`write` (refuses to overwrite
    unread samples), :meth:`push` (overwrites: a history ring) or :meth:`write_at`; the consumer
    takes samples with :meth:`read_into`, skips with :meth:`advance`, or peeks any still-stored
    range with :meth:`copy_range`.  The capacity is rounded up to a power of two.
    """

    def __init__(self, capacity: int, counters: np.ndarray | None = None) -> None:
        capacity = int(capacity)
        if capacity <= 0:
            raise RingError(f"ring capacity must be positive, got {capacity}")
        self.capacity = _pow2(capacity)
        self.mask = self.capacity - 1
        self.buf = np.zeros(self.capacity, dtype=np.float32)
        self.buf.fill(0.0)  # touch every page now, not in the audio callback (no page faults there)
        if counters is None:
            counters = np.zeros(2, dtype=np.int64)
        if counters.dtype != np.int64 or counters.shape != (2,):
            raise RingError("ring counters must be an int64 array of two slots")
        self.ctr = counters

    # counters: one writer each; plain aligned 8-byte loads/stores
    @property
    def written(self) -> int:
        """Absolute index one past the last published sample (written by the producer only)."""
        return int(self.ctr[0])

    @written.setter
    def written(self, v: int) -> None:
        release_fence()
        self.ctr[0] = v

    @property
    def read(self) -> int:
        """Absolute index of the next sample to consume (written by the consumer only)."""
        return int(self.ctr[1])

    @read.setter
    def read(self, v: int) -> None:
        self.ctr[1] = v

    # -- queries (either side) ----------------------------------------------------------------
    def available(self) -> int:
        """Samples published and not yet consumed (negative if the consumer skipped ahead)."""
        return self.written - self.read

    def free(self) -> int:
        """Samples the producer may still write without overwriting unread ones."""
        return self.capacity - (self.written - self.read)

    # -- producer --------------------------------------------------------------------------------
    def _store(self, start: int, x: np.ndarray) -> None:
        n = x.shape[0]
        s = start & self.mask
        first = min(n, self.capacity - s)
        np.copyto(self.buf[s : s + first], x[:first])
        if first < n:
            np.copyto(self.buf[: n - first], x[first:])

    def write(self, x: np.ndarray) -> int:
        """Append as many samples of ``x`` as fit without overwriting unread ones; returns the count."""
        w = self.written
        n = min(x.shape[0], self.capacity - (w - self.read))
        if n <= 0:
            return 0
        self._store(w, x[:n] if n < x.shape[0] else x)
        self.written = w + n  # publish after the copy (release fence in the setter)
        return n

    def push(self, x: np.ndarray) -> None:
        """Append all of ``x``, overwriting the oldest samples if needed (history rings)."""
        w, n = self.written, x.shape[0]
        if n > self.capacity:
            self._store(w + n - self.capacity, x[n - self.capacity :])
        else:
            self._store(w, x)
        self.written = w + n

    def write_at(self, start: int, x: np.ndarray) -> int:
        """Write ``x`` as samples ``start …`` (``start`` must equal :attr:`written`).  Samples below
        :attr:`read` are already due (the consumer skipped them) and are dropped; the rest is
        stored and published.  Returns the number of samples dropped (late)."""
        if start != self.written:
            raise RingError(f"write_at({start}) must continue at the write index {self.written}")
        n = x.shape[0]
        r = self.read
        late = min(n, max(0, r - start))
        if start + n - max(r, start) > self.capacity:
            raise RingError(f"write_at: {n - late} samples do not fit in the ring ({self.capacity})")
        if late < n:
            self._store(start + late, x[late:])
        self.written = start + n
        return late

    # -- consumer --------------------------------------------------------------------------------
    def _load(self, start: int, out: np.ndarray) -> None:
        n = out.shape[0]
        s = start & self.mask
        first = min(n, self.capacity - s)
        np.copyto(out[:first], self.buf[s : s + first])
        if first < n:
            np.copyto(out[first:], self.buf[: n - first])

    def read_into(self, out: np.ndarray) -> int:
        """Copy the next ``min(len(out), available)`` samples into ``out`` and consume them."""
        w = self.written
        acquire_fence()
        r = self.read
        n = min(out.shape[0], w - r)
        if n <= 0:
            return 0
        self._load(r, out[:n] if n < out.shape[0] else out)
        self.read = r + n
        return n

    def copy_range(self, start: int, out: np.ndarray) -> bool:
        """Copy samples ``start … start+len(out)`` into ``out`` without consuming.

        Returns False (and copies nothing) when part of the range is not stored: overwritten
        already or not yet written.  Indices below 0 read as silence (before the stream started).
        """
        n = out.shape[0]
        w = self.written
        acquire_fence()
        if start + n > w or start < w - self.capacity:
            return False
        if start < 0:
            k = min(n, -start)
            out[:k] = 0.0
            if k < n:
                self._load(0, out[k:])
            return True
        self._load(start, out)
        return True

    def advance(self, n: int) -> None:
        """Consume ``n`` samples without copying (the consumer may run ahead of the producer)."""
        self.read = self.read + n

    def tail(self, n: int) -> np.ndarray:
        """A new array with the last ``min(n, stored)`` published samples (not for the callback)."""
        w = self.written
        acquire_fence()
        n = max(0, min(int(n), w, self.capacity))
        out = np.empty(n, dtype=np.float32)
        if n:
            self._load(w - n, out)
        return out


# -- the live host's shared header and the audio callback -------------------------------------------
# ring counters (pairs: written, read)
IN_W, IN_R = 0, 1  # input ring: callback produces, worker consumes
OUT_W, OUT_R = 2, 3  # output ring: worker produces, callback consumes
PLAY_W, PLAY_R = 4, 5  # played-audio history: callback produces (monitor reads the tail)
# scalars written by the host (read by the callback)
LATENCY = 6  # total latency T in samples: a fallback sample at output o is input o − T
MODE = 7  # 0 duplex, 1 capture only (output discarded), 2 file input (no capture)
OUT_CH = 8  # interleaved output channels (the mono signal goes to every channel)
IN_CH = 9  # interleaved input channels (channel 0 is used)
LOOP = 10  # file input loops (1) or ends in silence (0)
# counters written by the callback (read by anyone)
XRUNS = 11  # callbacks with an over/underflow status flag
IN_OVERFLOWS = 12
OUT_UNDERFLOWS = 13
FALLBACK_SAMPLES = 14  # output samples the worker had not produced in time (dry was played)
FALLBACK_CALLBACKS = 15
CALLBACKS = 16
FILE_POS = 17
FILE_DONE = 18
MAX_FRAMES = 19  # largest period seen
# buffers: address and capacity (power of two) / length
IN_BUF, IN_CAP = 20, 21
OUT_BUF, OUT_CAP = 22, 23
PLAY_BUF, PLAY_CAP = 24, 25
FILE_BUF, FILE_LEN = 26, 27
STOP = 28  # set to 1 to end :func:`run_clock`
HDR_SIZE = 32

MODE_DUPLEX, MODE_CAPTURE, MODE_FILE = 0, 1, 2
#: PortAudio status bits that are xruns (priming output is not)
XRUN_FLAGS = 0x1 | 0x2 | 0x4 | 0x8  # input underflow, input overflow, output underflow, output overflow


def new_header() -> np.ndarray:
    """A zeroed header (int64, :data:`HDR_SIZE` slots)."""
    return np.zeros(HDR_SIZE, dtype=np.int64)


def attach(hdr: np.ndarray, slot_buf: int, slot_cap: int, arr: np.ndarray) -> None:
    """Record a float32 buffer's address and length in the header (keep ``arr`` alive!)."""
    if arr.dtype != np.float32 or not arr.flags.c_contiguous:
        raise RingError("audio buffers must be contiguous float32 arrays")
    hdr[slot_buf] = arr.ctypes.data
    hdr[slot_cap] = arr.shape[0]


@njit(cache=True, nogil=True)
def audio_callback_core(hdr, inp, out, frames, status) -> int:
    """The audio callback body: copies and counters only (no allocation, no lock, no GIL).

    ``inp``: interleaved input frames (ignored unless capturing), ``out``: interleaved output
    frames (``frames × OUT_CH``; may be a scratch buffer when there is no playback device).
    Returns 0 (paContinue).
    """
    if status & XRUN_FLAGS:
        hdr[XRUNS] += 1
        if status & 0x2:
            hdr[IN_OVERFLOWS] += 1
        if status & 0x4:
            hdr[OUT_UNDERFLOWS] += 1
    if frames > hdr[MAX_FRAMES]:
        hdr[MAX_FRAMES] = frames
    in_buf = carray(_as_f32_ptr(hdr[IN_BUF]), (hdr[IN_CAP],))
    in_mask = hdr[IN_CAP] - 1
    w_in = hdr[IN_W]
    mode = hdr[MODE]
    # 1. input → input ring (capture, or the file played in real time)
    if mode == MODE_FILE:
        src = carray(_as_f32_ptr(hdr[FILE_BUF]), (hdr[FILE_LEN],))
        n_src = hdr[FILE_LEN]
        pos = hdr[FILE_POS]
        for i in range(frames):
            if pos >= n_src:
                if hdr[LOOP]:
                    pos = 0
                else:
                    hdr[FILE_DONE] = 1
            in_buf[(w_in + i) & in_mask] = src[pos] if pos < n_src else 0.0
            if pos < n_src:
                pos += 1
        hdr[FILE_POS] = pos
    else:
        ch = hdr[IN_CH]
        for i in range(frames):
            in_buf[(w_in + i) & in_mask] = inp[i * ch]
    _fence(1)
    hdr[IN_W] = w_in + frames
    # 2. output ring → output; samples the worker has not produced: delay-aligned dry input
    out_buf = carray(_as_f32_ptr(hdr[OUT_BUF]), (hdr[OUT_CAP],))
    out_mask = hdr[OUT_CAP] - 1
    play = carray(_as_f32_ptr(hdr[PLAY_BUF]), (hdr[PLAY_CAP],))
    play_mask = hdr[PLAY_CAP] - 1
    w_out = hdr[OUT_W]
    _fence(0)
    r = hdr[OUT_R]
    got = min(frames, max(0, w_out - r))
    lat = hdr[LATENCY]
    oldest = w_in + frames - hdr[IN_CAP]
    och = hdr[OUT_CH]
    w_play = hdr[PLAY_W]
    for i in range(frames):
        if i < got:
            v = out_buf[(r + i) & out_mask]
        else:
            j = r + i - lat
            v = in_buf[j & in_mask] if (j >= 0 and j >= oldest) else 0.0
        for c in range(och):
            out[i * och + c] = v
        play[(w_play + i) & play_mask] = v
    if got < frames:
        hdr[FALLBACK_SAMPLES] += frames - got
        hdr[FALLBACK_CALLBACKS] += 1
    hdr[OUT_R] = r + frames
    _fence(1)
    hdr[PLAY_W] = w_play + frames
    hdr[CALLBACKS] += 1
    return 0


_PA_SIG = types.int32(types.voidptr, types.voidptr, types.uint64, types.voidptr, types.uint64, types.voidptr)


@cfunc(_PA_SIG, nopython=True, cache=True)
def _pa_callback(inp, out, frames, time_info, status, user):
    hdr = carray(_as_i64_ptr(user), (HDR_SIZE,))
    n_out = frames * max(1, hdr[OUT_CH])
    o = carray(_as_f32_ptr(out), (n_out,))
    if hdr[MODE] == MODE_FILE:
        return audio_callback_core(hdr, o, o, frames, status)
    i = carray(_as_f32_ptr(inp), (frames * max(1, hdr[IN_CH]),))
    return audio_callback_core(hdr, i, o, frames, status)


@cfunc(_PA_SIG, nopython=True, cache=True)
def _pa_callback_capture(inp, out, frames, time_info, status, user):
    """Capture-only streams: PortAudio gives no output buffer; the output goes to a scratch."""
    hdr = carray(_as_i64_ptr(user), (HDR_SIZE,))
    i = carray(_as_f32_ptr(inp), (frames * max(1, hdr[IN_CH]),))
    scratch = carray(_as_f32_ptr(hdr[FILE_BUF]), (hdr[FILE_LEN],))  # MODE_CAPTURE: FILE_BUF = scratch
    return audio_callback_core(hdr, i, scratch[: frames * max(1, hdr[OUT_CH])], frames, status)


def callback_address(capture_only: bool = False) -> int:
    """Address of the compiled PortAudio stream callback (``userData`` must be the header)."""
    return (_pa_callback_capture if capture_only else _pa_callback).address


# -- a GIL-free clock for running without any audio device (file in, no playback) -------------------
_libc = ctypes.CDLL(None)
_clock_gettime = _libc.clock_gettime
_clock_gettime.argtypes = [ctypes.c_int, ctypes.c_ssize_t]  # (clockid, struct timespec*)
_clock_gettime.restype = ctypes.c_int
_nanosleep = _libc.nanosleep
_nanosleep.argtypes = [ctypes.c_ssize_t, ctypes.c_ssize_t]  # (const timespec*, timespec*)
_nanosleep.restype = ctypes.c_int
_CLOCK_MONOTONIC = 1


@njit(nogil=True)
def _now_ns(ts) -> int:
    _clock_gettime(_CLOCK_MONOTONIC, ts.ctypes.data)
    return ts[0] * 1_000_000_000 + ts[1]


@njit(nogil=True)
def run_clock(hdr, inp, out, period, rate) -> int:
    """Call :func:`audio_callback_core` every ``period`` samples of wall-clock time (absolute
    schedule, no drift) until ``hdr[STOP]`` is set.  Runs without the GIL, like a device callback.
    Returns the number of periods run."""
    ts = np.zeros(2, dtype=np.int64)
    sl = np.zeros(2, dtype=np.int64)
    t0 = _now_ns(ts)
    k = 0
    while hdr[STOP] == 0:
        k += 1
        audio_callback_core(hdr, inp, out, period, 0)
        d = t0 + (k * period * 1_000_000_000) // rate - _now_ns(ts)
        if d > 0:
            sl[0] = d // 1_000_000_000
            sl[1] = d % 1_000_000_000
            _nanosleep(sl.ctypes.data, 0)
    return k
