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
        import textwrap

        width = max(40, int(fig.get_figwidth() * 15))  # characters of 7-pt text per line, about
        fig.supxlabel(textwrap.fill(f"not trained enough (convergence check): {'; '.join(flagged)}; read with care",
                                    width), fontsize=7, color="firebrick")
    path = save(fig, Path(outdir) / f"{ds.attrs.get('experiment', 'experiment')}-{image_class}-{kind}.png")
    plt.close(fig)
    return path


def undertrained_models(ds, image_class: str) -> list[str]:
    """The trained models of ``image_class`` in the experiment ``ds`` that
    :func:`gahb_bench.convergence.cell_verdicts` flags as not trained enough, grouped by N, the
    largest first (``"N=6517 S1+S2"``, with ``seed=…`` beyond seed 0); a cell without a loss
    profile is not judged (as in the scorecard). [] for a dataset that is not a whole
    experiment's cells (a baseline's, a summary's, a plugin's reduced one): a label must never
    cost a figure."""
    from gahb_bench.battery import CELL_DIMS
    from gahb_bench.convergence import NO_PROFILE, cell_verdicts

    if not hasattr(ds, "data_vars") or "status" not in ds or not set(CELL_DIMS) <= set(ds.dims):
        return []
    if image_class not in ds.image_class.values:
        return []
    keep = [v for v in ("status", "psnr", "psnr_gap", "psnr_gap_floor", "loss_change", "loss_change_se",
                        "baseline_psnr", "baseline_status") if v in ds]
    one = ds[keep].isel(arch=0) if "arch" in ds.dims else ds[keep]
    try:
        verdicts = cell_verdicts(one)
    except (KeyError, ValueError, TypeError, IndexError):
        return []
    models: dict[tuple[int, int], list[str]] = {}
    for (cls, n, subset, seed), why in verdicts:
        if cls == image_class and [r for r in why.split("; ") if r and r != NO_PROFILE]:
            models.setdefault((n, seed), []).append(f"S{subset + 1}")
    return [f"N={n} {'+'.join(subsets)}" + (f" seed={seed}" if seed else "")
            for (n, seed), subsets in sorted(models.items(), key=lambda item: (-item[0][0], item[0][1]))]
