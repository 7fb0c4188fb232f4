"""Progress bars: a resumed training's bar counts the steps its snapshot holds but times only
the steps this process does, so its time left is not shrunk by the resumed steps."""

import io
import re
import time

from gahb_bench.progress import Progress


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def _time_left(text: str) -> float:
    """Seconds left in the last bar drawn: tqdm's ``[elapsed<left, rate]``."""
    minutes, seconds = re.findall(r"<(\d+):(\d+)", text)[-1]
    return 60 * int(minutes) + int(seconds)


def test_a_resumed_bar_counts_the_resumed_steps_without_timing_them(monkeypatch):
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    with Progress().bar(100_000, "train") as update:
        update(50_000, resumed=True)
        time.sleep(0.15)  # past tqdm's minimum interval between draws
        update(10)
        text = terminal.getvalue()
    assert "50010/100000" in text
    # 10 steps in >= 0.15 s: at most ~67 steps/s, so 49,990 steps left are over 10 minutes. Timing
    # the resumed 50,000 steps too would give ~0.15 s left.
    assert _time_left(text) > 600


def test_bars_are_off_when_quiet_or_not_on_a_terminal(monkeypatch):
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    with Progress(quiet=True).bar(10, "train") as update:
        update(3, resumed=True)
        update(1)
    assert terminal.getvalue() == ""
