"""Deadline control for the live host: trade refinement work for time when the worker falls behind.

A pure class (no audio, no threads) so its logic is testable offline.  The worker reports, per
processed chunk, how long the engine took (seconds of compute), how much audio it was (seconds) and
how far ahead of the playback position its output landed (slack, seconds; negative = late).  The
controller answers with load caps for ``Engine.set_load_limit(steps, candidates)`` and, per chunk,
whether to run the engine's cheap delay-aligned dry path to catch up.

Levels, most work first: ``(S, C), (S, C−1), …, (S, 1), (S−1, 1), …, (0, 1), dry``: candidates go
first, then steps, then the model altogether.  Cost of a level is modelled as model passes per
block, ``1 + steps·candidates`` (the previous estimate is a free candidate).

* Step down at once (to the first level whose predicted load fits under ``high``) when a chunk lands with less than ``margin_s`` of slack (a deadline
  miss or nearly), when a chunk had to take the dry path to catch up, or when the smoothed load
  (compute / audio time) exceeds ``high``; then wait
  ``cooldown_s`` of audio before stepping down again so the effect can be seen.
* Step up one level when the load predicted for that level (measured load per pass × passes of the
  level) stays below ``low`` for ``climb_s`` of audio (from the dry path, where nothing measures
  the model, it probes after the wait).  A level that had to be left again soon after
  climbing to it doubles its climb wait (up to ``max_climb_s``): hysteresis against oscillation.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Level:
    """One rung of the ladder: refinement steps and candidates per step, or the dry path."""

    steps: int
    candidates: int
    dry: bool = False

    @property
    def cost(self) -> float:
        """Model passes per block (the dry path counts as a small constant)."""
        return 0.05 if self.dry else 1.0 + self.steps * self.candidates


def ladder(steps: int, candidates: int) -> list[Level]:
    """All levels from ``(steps, candidates)`` down to dry, candidates reduced first."""
    steps, candidates = max(0, int(steps)), max(1, int(candidates))
    out = [Level(steps, c) for c in range(candidates, 0, -1)] if steps else []
    out += [Level(s, 1) for s in range(steps - 1, -1, -1)] if steps else [Level(0, 1)]
    out.append(Level(0, 1, dry=True))
    return out


class DeadlineController:
    """Chooses load caps from measured compute time and output slack (all times in seconds)."""

    def __init__(
        self,
        steps: int,
        candidates: int,
        *,
        high: float = 0.75,
        low: float = 0.5,
        tau_s: float = 0.5,
        margin_s: float = 0.005,
        cooldown_s: float = 0.3,
        climb_s: float = 2.0,
        max_climb_s: float = 30.0,
    ) -> None:
        if not 0.0 < low < high:
            raise ValueError(f"need 0 < low < high, got low={low}, high={high}")
        self.high, self.low, self.tau_s = float(high), float(low), float(tau_s)
        self.margin_s, self.cooldown_s = float(margin_s), float(cooldown_s)
        self.base_climb_s, self.max_climb_s = float(climb_s), float(max_climb_s)
        self.levels: list[Level] = ladder(steps, candidates)
        self.index = 0  # current level (0 = full work)
        self.load = 0.0  # smoothed compute/audio ratio at the current level
        self.unit_load = 0.0  # smoothed load per model pass (from non-dry levels)
        self._since_down = 1e9  # audio seconds since the last step down
        self._good_s = 0.0  # audio seconds the next level up was predicted to fit
        self._climb_wait: dict[int, float] = {}
        self._climbed_at: dict[int, float] = {}
        self._clock = 0.0  # audio seconds seen
        self.changes = 0  # number of level changes so far

    # -- state ---------------------------------------------------------------------------------
    @property
    def level(self) -> Level:
        return self.levels[self.index]

    @property
    def dry(self) -> bool:
        """True when the model is off for load reasons (delay-aligned dry output)."""
        return self.level.dry

    def caps(self) -> tuple[int | None, int | None]:
        """Arguments for ``Engine.set_load_limit``: ``(None, None)`` at full work."""
        if self.index == 0:
            return None, None
        lv = self.level
        return (0, 1) if lv.dry else (lv.steps, lv.candidates)

    def reconfigure(self, steps: int, candidates: int) -> None:
        """New requested work (user changed steps/candidates): keep the caps no looser than now."""
        cur = self.level
        self.levels = ladder(steps, candidates)
        if self.index == 0:
            return
        for i, lv in enumerate(self.levels):
            if (
                lv.dry == cur.dry
                and lv.steps <= cur.steps
                and (lv.steps < cur.steps or lv.candidates <= cur.candidates)
            ):
                self.index = i
                break
        else:
            self.index = len(self.levels) - 1
        self._good_s = 0.0

    # -- per chunk -------------------------------------------------------------------------------
    def should_catch_up(self, slack_s: float, chunk_s: float) -> bool:
        """True when this chunk should take the dry path: the output due soonest has less slack
        than the expected compute time of one chunk plus the safety margin."""
        if self.dry:
            return True
        expected = max(self.load, self.unit_load * self.level.cost) * chunk_s
        return slack_s < expected + self.margin_s

    def update(self, compute_s: float, audio_s: float, slack_s: float, dry: bool = False) -> bool:
        """Account one processed chunk; returns True when the level (caps) changed."""
        if audio_s <= 0:
            return False
        self._clock += audio_s
        self._since_down += audio_s
        a = min(1.0, audio_s / self.tau_s)
        ratio = compute_s / audio_s
        if self._clock == audio_s and not dry:  # first measurement: start the averages there
            self.load, self.unit_load = ratio, ratio / self.level.cost
        if not dry:
            self.load += a * (ratio - self.load)
            self.unit_load += a * (ratio / self.level.cost - self.unit_load)
        elif self.dry:
            self.load += a * (ratio - self.load)
        urgent = slack_s < self.margin_s
        overloaded = (not dry) and self.load > self.high
        caught_up = dry and not self.dry  # this level's model work had to be skipped to keep up
        if (urgent or overloaded or caught_up) and self._since_down >= self.cooldown_s:
            return self._step_down()
        if urgent or caught_up:
            self._good_s = 0.0
            return False
        if self.index > 0 and self._since_down >= self.cooldown_s:
            up = self.levels[self.index - 1]
            # on the dry path nothing measures the model's cost: probe after the climb wait
            if self.dry or self.unit_load * up.cost < self.low:
                self._good_s += audio_s
            else:
                self._good_s = 0.0
            if self._good_s >= self._climb_wait.get(self.index - 1, self.base_climb_s):
                return self._step_up()
        return False

    def _step_down(self) -> bool:
        self._since_down = 0.0
        self._good_s = 0.0
        if self.index >= len(self.levels) - 1:
            return False
        left = self.index
        climbed = self._climbed_at.get(left)
        if climbed is not None and self._clock - climbed < 4 * self._climb_wait.get(left, self.base_climb_s):
            self._climb_wait[left] = min(self.max_climb_s, 2 * self._climb_wait.get(left, self.base_climb_s))
        # jump straight to the first level whose predicted load fits (measured load per pass)
        nxt = self.index + 1
        if self.unit_load > 0:
            while nxt < len(self.levels) - 1 and self.unit_load * self.levels[nxt].cost > 0.9 * self.high:
                nxt += 1
        self.index = nxt
        self.changes += 1
        if not self.dry:
            self.load = self.unit_load * self.level.cost
        return True

    def _step_up(self) -> bool:
        self.index -= 1
        self._climbed_at[self.index] = self._clock
        self._good_s = 0.0
        self.load = self.unit_load * self.level.cost
        self.changes += 1
        return True
