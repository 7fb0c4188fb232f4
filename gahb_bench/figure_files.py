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
    list figures by), close it, and return the path. When the convergence check flags some of
    the class's trained models (:func:`undertrained_models`), the figure says so along its
    bottom edge: a reader of the figure alone should not take a short run's curves for a result."""
    import matplotlib.pyplot as plt

    flagged = undertrained_models(ds, image_class)
    if flagged:
        shown = ", ".join(flagged[:MARKED]) + (f" and {len(flagged) - MARKED} more" if len(flagged) > MARKED else "")
        fig.supxlabel(f"not trained enough (convergence check): {shown}; read with care", fontsize=7,
                      color="firebrick")
    path = save(fig, Path(outdir) / f"{ds.attrs.get('experiment', 'experiment')}-{image_class}-{kind}.png")
    plt.close(fig)
    return path


#: How many flagged models a figure names before it counts the rest.
MARKED = 4


def undertrained_models(ds, image_class: str) -> list[str]:
    """The trained models of ``image_class`` in the experiment ``ds`` that
    :func:`gahb_bench.convergence.cell_verdicts` flags as not trained enough, as
    ``"N=… S… seed=…"``; [] for a dataset without training cells (a baseline's, a summary's)."""
    from gahb_bench.convergence import cell_verdicts

    if not hasattr(ds, "data_vars") or "status" not in ds or "image_class" not in ds.dims:
        return []
    one = ds.isel(arch=0) if "arch" in ds.dims else ds
    one = one.sel(image_class=[image_class]) if image_class in one.image_class.values else None
    if one is None:
        return []
    return [f"N={n} S{subset + 1} seed={seed}" for (_, n, subset, seed), why in cell_verdicts(one) if why]
