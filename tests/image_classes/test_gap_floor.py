"""The gap floor: a training-free denoiser does as well on training subsets as on the test set.

A train − test PSNR gap means memorization only if train and test come from one distribution.
Wavelet hard thresholding knows nothing of either set, so its own train − test difference must
vanish (here: |mean over σ| ≤ 0.2 dB) for every built-in image class. The control at the end
shows the check has teeth: the former split by source image (test patches from held-out
photographs) fails it by several tenths of a dB.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from gahb_bench.data.prepare import prepare_dataset
from gahb_bench.image_classes.photographs import SOURCES, PhotographsDataset, grid_patches, source_image
from gahb_bench.metrics.psnr import denoising_curves, sigma_grid
from gahb_bench.registry import DEFAULT_PLUGINS, get_registry

BOUND = 0.2
SIGMAS = sigma_grid(0.01, 1.0, 8)

#: image class → (image size, params, training images, test images). Enough images that the
#: sampling error of the difference (about 0.065 dB for photographs at 2300 + 2300, measured from
#: the per-image spread) is well inside the bound.
CASES = {
    "photographs": (16, {}, 2300, 2300),
    "faces": (16, {}, 80, 20),  # all the faces there are: 80 train, 20 test
    "shuffled_photographs": (16, {}, 2300, 2300),
    "calpha": (16, {"convention": "paper-code"}, 600, 600),
    "gaussian": (16, {}, 600, 600),
    "disks": (16, {}, 600, 600),
    "ray": (16, {}, 600, 600),
    "sine_cone": (16, {}, 600, 600),
    "prepared": (16, {"dataset": "skimage-crops", "test_fraction": 0.3}, 270, 230),
}


def gap_floor(train: np.ndarray, test: np.ndarray) -> float:
    """Wavelet hard thresholding's mean train − test output PSNR over :data:`SIGMAS` (dB)."""
    record = get_registry().baseline("wavelet-hard")
    wavelet = [lambda noisy, sigma: np.asarray(record.denoise(noisy, sigma, **record.params))]
    psnr_train, _ = denoising_curves(wavelet, train, SIGMAS, np.random.default_rng(1))
    psnr_test, _ = denoising_curves(wavelet, test, SIGMAS, np.random.default_rng(2))
    return float(np.mean(psnr_train - psnr_test))


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    """A prepared dataset of 800 crops of scikit-image's photographs (as PNG files, 32×32)."""
    src = tmp_path_factory.mktemp("crops")
    k = 0
    for name in SOURCES:
        for patch in grid_patches(source_image(name), 32)[::3]:
            if patch.std() > 0.02 and k < 800:
                Image.fromarray(np.round(patch * 255).astype(np.uint8)).save(src / f"{k:04d}.png")
                k += 1
    root = tmp_path_factory.mktemp("data-root")
    prepare_dataset("folder", src, data_root=root, name="skimage-crops", size=16, progress=False)
    return root


def test_every_built_in_class_is_checked():
    registry = get_registry()
    built_in = {e.record.name for e in registry.items("image-classes")
                if e.plugin.name in DEFAULT_PLUGINS or e.plugin.name.startswith("gahb_bench.")}
    assert built_in == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_training_free_gap_floor_is_zero(name, data_root):
    size, params, n_train, n_test = CASES[name]
    if name == "prepared":
        params = {**params, "data_root": str(data_root)}
    dataset = get_registry().image_class(name).build(size, **params)
    if name == "faces":
        train = dataset.read(dataset.pools()[0])
    else:
        train = np.concatenate([dataset.train_subset(n_train // 2, s, 0) for s in (0, 1)])
    floor = gap_floor(train, dataset.test_set(n_test, 0))
    assert abs(floor) <= BOUND, f"{name}: a training-free denoiser shows a train - test gap of {floor:.2f} dB"


def test_a_split_by_source_image_would_fail():
    photos = PhotographsDataset(16)
    patches, origin = photos._collection()
    held_out = np.isin(origin, [SOURCES.index(s) for s in ("camera", "coffee", "gravel")])
    rng = np.random.default_rng(0)
    train = patches[rng.permutation(np.nonzero(~held_out)[0])[:1000]]
    test = patches[rng.permutation(np.nonzero(held_out)[0])[:1000]]
    assert gap_floor(train, test) > 0.5
