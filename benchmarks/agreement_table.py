"""Print the reference-agreement table of a store as Markdown: per training-set size N and noise
level σ, the centred r² of each reference as a prediction of the network (median over the
metric's test images, then the mean over the replicates: subsets and seeds; cells not done
are left out), beside its two
controls (the noisy input itself and the wavelet baseline), the best patch size P* of the
``local`` reference and the Jacobian rows' 50% / 90% energy radii.

    python benchmarks/agreement_table.py STORE                  # smallest and largest σ
    python benchmarks/agreement_table.py STORE --all-sigmas     # every σ, and the residual r²

This is the table of the README's "Reference agreement and locality" section, read from the
store with xarray (the definitions are :mod:`gahb_bench.metrics.reference_agreement`'s).
"""

from __future__ import annotations

import argparse
import sys
import warnings

import numpy as np
import xarray as xr

from gahb_bench.metrics.reference_agreement import class_medians
from gahb_bench.store import metric_done



def _number(x: float) -> str:
    """Two decimals below 10 in size, none above; a typographic minus."""
    if not np.isfinite(x):
        return "NaN"
    return (f"{x:.2f}" if abs(x) < 10 else f"{x:.0f}").replace("-", "−")


def _patch(x: float) -> str:
    """A patch size; NaN where the best median is tied (every P gives the same denoiser)."""
    return f"{x:g}" if np.isfinite(x) else "tie (NaN)"


def rows(med: xr.Dataset, best: xr.DataArray, sigmas, residual: bool = False) -> list[str]:
    """One Markdown row per N of :func:`~gahb_bench.metrics.reference_agreement.class_medians`'
    statistics: each at ``sigmas`` joined by " / "."""
    out = []
    for n in med.n_train.values:
        cell = med.sel(n_train=n)

        def at(variable: xr.DataArray) -> str:
            return " / ".join(_number(float(variable.sel(reference_sigma=s))) for s in sigmas)

        refs = cell.reference.values
        if residual:
            columns = [at(cell.baseline_residual_agreement)]
            columns += [at(cell.residual_agreement.sel(reference=r)) for r in refs]
        else:
            columns = [at(cell.identity_agreement), at(cell.baseline_agreement)]
            columns += [at(cell.agreement.sel(reference=r)) for r in refs]
            local = best.sel(n_train=n, patch_reference="local")
            columns.append(" → ".join(_patch(float(local.sel(reference_sigma=s))) for s in sigmas))
            radius = cell.locality_radius
            columns.append(" → ".join(" / ".join(_number(float(radius.sel(reference_sigma=s, energy_fraction=e)))
                                                 for e in radius.energy_fraction.values) for s in sigmas))
        out.append(f"| {n} | {' / '.join(f'{s:g}' for s in sigmas)} | " + " | ".join(columns) + " |")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", help="a store written by gahb run")
    parser.add_argument("--experiment", default="generalization", help="the store's group (default: generalization)")
    parser.add_argument("--all-sigmas", action="store_true", help="every σ of the metric, and the residual r²")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN medians of cells not run
    try:
        ds = xr.open_zarr(args.store, group=args.experiment, consolidated=False)
    except (FileNotFoundError, KeyError, ValueError) as error:
        print(f"agreement_table: cannot open group {args.experiment!r} of {args.store}: {error}", file=sys.stderr)
        return 2
    if "agreement" not in ds:
        print(f"agreement_table: {args.experiment!r} of {args.store} has no reference agreement", file=sys.stderr)
        return 2
    if ds.sizes["arch"] != 1 or ds.sizes["image_class"] != 1:
        print("agreement_table: expected one architecture and one image class", file=sys.stderr)
        return 2
    ds = ds.load()
    med, best = class_medians(ds, metric_done(ds, "reference_agreement"), ds.image_class.values[0])
    sigmas = ds.reference_sigma.values
    sigmas = sigmas if args.all_sigmas else [sigmas[0], sigmas[-1]]
    references = " | ".join(ds.reference.values)
    print(f"| N | σ | identity | wavelet (control) | {references} | P* (local) | Jacobian radius 50% / 90% |")
    print("|---" * (6 + len(ds.reference)) + "|")
    print("\n".join(rows(med, best, sigmas)))
    if args.all_sigmas:
        print(f"\nResidual r² (what is removed):\n\n| N | σ | wavelet (control) | {references} |")
        print("|---" * (3 + len(ds.reference)) + "|")
        print("\n".join(rows(med, best, sigmas, residual=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
