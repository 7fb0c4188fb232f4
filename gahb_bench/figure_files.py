"""How figures are written: every plot of a metric saves through :func:`save`.

:func:`save` writes the PNG the run and the leaderboard use; inside :func:`also_as`
(``gahb report`` opens it with ``"svg"``) it writes the same figure in the other formats too,
beside the PNG (``NAME.svg`` next to ``NAME.png``). A metric plugin's ``plot`` should save
through it as well, so that its figures get the same formats; :func:`save_class_figure` also
names the file the way every built-in figure is named and closes the figure.
"""

from __future__ import annotations

import contextlib
import contextvars
from pathlib import Path
from typing import Iterator

_EXTRA: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("gahb_figure_formats", default=())
#: The formats :func:`also_as` accepts (vector formats matplotlib writes without extra packages).
FORMATS = ("svg", "pdf")


@contextlib.contextmanager
def also_as(*formats: str) -> Iterator[None]:
    """Within the block, :func:`save` also writes each of ``formats``."""
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ValueError(f"figure formats {unknown} are not among {', '.join(FORMATS)}")
    token = _EXTRA.set(tuple(formats))
    try:
        yield
    finally:
        _EXTRA.reset(token)


def save(fig, path: Path, dpi: int = 110) -> Path:
    """Write ``fig`` to ``path`` (a PNG) and, inside :func:`also_as`, to the other formats
    asked for; returns ``path``."""
    path = Path(path)
    fig.savefig(path, dpi=dpi)
    for fmt in _EXTRA.get():
        fig.savefig(path.with_suffix(f".{fmt}"))
    return path


def save_class_figure(fig, outdir: Path, ds, image_class: str, kind: str) -> Path:
    """Save ``fig`` through :func:`save` as ``EXPERIMENT-CLASS-KIND.png`` in ``outdir`` (the
    experiment from ``ds.attrs["experiment"]``: the name the leaderboard and ``gahb report``
    list figures by), close it, and return the path."""
    import matplotlib.pyplot as plt

    path = save(fig, Path(outdir) / f"{ds.attrs.get('experiment', 'experiment')}-{image_class}-{kind}.png")
    plt.close(fig)
    return path
