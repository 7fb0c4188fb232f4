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
    assert undertrained_models(ds, "disks") == ["N=100 S1"]
    assert undertrained_models(ds, "ray") == []  # a class the experiment does not hold
    fig, _ = plt.subplots(constrained_layout=True)
    path = save_class_figure(fig, tmp_path, ds, "disks", "spectra")
    assert path.name == "geometry-disks-spectra.png" and path.is_file()
    assert fig._supxlabel.get_text() == "not trained enough (convergence check): N=100 S1; read with care"
    calm, _ = plt.subplots(constrained_layout=True)
    save_class_figure(calm, tmp_path, _experiment({10: -0.01, 100: 0.0}), "disks", "spectra")
    assert calm._supxlabel is None


def test_flagged_models_are_grouped_by_n_largest_first_and_the_label_wraps_to_the_figure(tmp_path):
    ds = _experiment({n: -0.5 for n in (1, 10, 100, 1000, 6517)})
    both = xr.concat([ds, ds.assign_coords(subset=[1])], dim="subset")  # S1 and S2, both flagged
    assert undertrained_models(both, "disks") == ["N=6517 S1+S2", "N=1000 S1+S2", "N=100 S1+S2", "N=10 S1+S2",
                                                  "N=1 S1+S2"]
    fig, _ = plt.subplots(figsize=(4.5, 3.6), constrained_layout=True)
    save_class_figure(fig, tmp_path, both, "disks", "spectra")
    lines = fig._supxlabel.get_text().splitlines()
    assert len(lines) > 1 and all(len(line) <= 67 for line in lines)  # 4.5 in: 67 characters a line
    assert " ".join(lines).endswith("N=1 S1+S2; read with care")


def test_cells_without_a_loss_profile_or_a_reduced_dataset_are_not_marked(tmp_path):
    ds = _experiment({10: float("nan"), 100: -0.01})  # no profile: not judged, as in the scorecard
    assert undertrained_models(ds, "disks") == []
    flagged = _experiment({10: -0.5})
    assert undertrained_models(flagged.sel(seed=0), "disks") == []  # a plugin's reduced dataset: no label
    assert undertrained_models(flagged.drop_vars("status"), "disks") == []  # no training cells
    seeded = flagged.assign_coords(seed=[3])
    assert undertrained_models(seeded, "disks") == ["N=10 S1 seed=3"]
