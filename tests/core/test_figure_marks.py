"""A figure of a class whose models the convergence check flags says so on the figure itself."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from gahb_bench.figure_files import save_class_figure, undertrained_models  # noqa: E402

CELL = ("image_class", "n_train", "subset", "seed")


def _experiment(changes: dict[int, float]) -> xr.Dataset:
    """A geometry experiment of one class ('disks'), one model per N, whose loss changed over
    its last tenth of training by ``changes[N]`` (−0.3: still falling 30%, flagged)."""
    sigma = np.array([0.01, 0.1, 1.0])
    n = list(changes)
    shape = (1, len(n), 1, 1)
    psnr = np.broadcast_to(np.array([[45.0, 25.0, 10.0], [30.0, 22.0, 9.0]]), shape + (2, 3))
    return xr.Dataset(
        {"psnr": (CELL + ("split", "sigma"), psnr), "status": (CELL, np.ones(shape)),
         "loss_change": (CELL, np.array(list(changes.values())).reshape(shape)),
         "loss_change_se": (CELL, np.full(shape, 0.01))},
        coords={"image_class": ["disks"], "n_train": n, "subset": [0], "seed": [0], "split": ["train", "test"],
                "sigma": sigma, "psnr_in": ("sigma", -20 * np.log10(sigma))},
        attrs={"experiment": "geometry"})


def test_a_flagged_model_is_named_along_the_figure_and_a_converged_one_leaves_it_alone(tmp_path):
    ds = _experiment({10: -0.01, 100: -0.3})
    assert undertrained_models(ds, "disks") == ["N=100 S1 seed=0"]
    assert undertrained_models(ds, "ray") == []  # a class the experiment does not hold
    fig, _ = plt.subplots(constrained_layout=True)
    path = save_class_figure(fig, tmp_path, ds, "disks", "spectra")
    assert path.name == "geometry-disks-spectra.png" and path.is_file()
    assert fig._supxlabel.get_text() == "not trained enough (convergence check): N=100 S1 seed=0; read with care"
    calm, _ = plt.subplots(constrained_layout=True)
    save_class_figure(calm, tmp_path, _experiment({10: -0.01, 100: 0.0}), "disks", "spectra")
    assert calm._supxlabel is None


def test_many_flagged_models_are_counted_past_the_first_four(tmp_path):
    ds = _experiment({n: -0.5 for n in (1, 2, 3, 4, 5, 6)})
    fig, _ = plt.subplots(constrained_layout=True)
    save_class_figure(fig, tmp_path, ds, "disks", "spectra")
    assert fig._supxlabel.get_text().endswith("N=4 S1 seed=0 and 2 more; read with care")
    assert undertrained_models(ds.drop_vars("status"), "disks") == []  # no training cells: nothing to flag
