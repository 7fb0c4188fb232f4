"""Progress shown on long work: tqdm bars and one-line notes, both on stderr.

Bars are drawn only when stderr is a terminal and ``quiet`` is off; notes (one line per
finished cell) are printed unless ``quiet``, so logs and tests can follow a run.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Callable, Iterator


class Progress:
    """Progress reporting for one process."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet

    @property
    def bars(self) -> bool:
        return not self.quiet and sys.stderr.isatty()

    @contextlib.contextmanager
    def bar(self, total: int, desc: str) -> Iterator[Callable[..., None]]:
        """A context yielding ``update(k, resumed=False)``: k more steps done. ``resumed=True``
        counts steps an earlier process did (a training resumed from its snapshot) without
        timing them, so the rate and the time left are this process's own. A no-op when bars
        are off."""
        if not self.bars:
            yield lambda k, resumed=False: None
            return
        from tqdm.auto import tqdm

        with tqdm(total=total, desc=desc, leave=False, file=sys.stderr, dynamic_ncols=True) as bar:
            def update(k: int, resumed: bool = False) -> None:
                if not resumed:
                    bar.update(k)
                    return
                # tqdm's rate is (n − initial) / elapsed, and its smoothed rate sees only the steps
                # since the last print: moving all three leaves the resumed steps out of both.
                bar.initial += k
                bar.n += k
                bar.last_print_n = bar.n
                bar.refresh()
            yield update

    def note(self, message: str) -> None:
        """Print one line to stderr unless quiet."""
        if not self.quiet:
            print(message, file=sys.stderr, flush=True)
