"""The model-variance metrics on denoisers whose answers are known: pure memorizers and twins."""

import numpy as np
import pytest
import torch

from gahb_bench.image_classes.photographs import PhotographsDataset
from gahb_bench.metrics import memorization, model_variance, paired_samples
from gahb_bench.metrics.context import MetricContext, PairContext


class NearestTraining(torch.nn.Module):
    """A pure memorizer: returns the training image nearest (in pixel distance) to its input."""

    def __init__(self, train: np.ndarray):
        super().__init__()
        self.train_images = torch.as_tensor(train, dtype=torch.float32)

    def forward(self, y):
        d2 = torch.cdist(y.flatten(1), self.train_images.flatten(1))
        return self.train_images[d2.argmin(dim=1)]


class Shrink(torch.nn.Module):
    """A fixed linear denoiser: y ↦ 0.5 + 0.8 (y − 0.5)."""

    def forward(self, y):
        return 0.5 + 0.8 * (y - 0.5)


@pytest.fixture(scope="module")
def photos():
    return PhotographsDataset(8)


def _pair(models, subsets, photos, **settings):
    merged = {**paired_samples.DEFAULTS, **model_variance.DEFAULTS, "n_samples": 12, "n_show": 2, **settings}
    return PairContext(models=models, train_images=subsets, dataset=photos, data_seed=0, settings=merged,
                       seed=7, device=torch.device("cpu"))


def test_memorizer_at_n_1_is_the_empirical_optimum(photos):
    train = photos.train_subset(1, 0, 0)
    ctx = MetricContext(model=NearestTraining(train), train_images=train, dataset=photos, data_seed=0,
                        settings={**memorization.DEFAULTS, "n_test": 16, "n_sigma": 4}, seed=1,
                        device=torch.device("cpu"))
    out = memorization.compute(ctx)
    np.testing.assert_allclose(out["distance_to_empirical"], 0.0, atol=1e-12)
    np.testing.assert_allclose(out["relative_distance_to_empirical"], 0.0, atol=1e-12)
    assert (out["distance_to_input"] > 0).all()
    # A denoiser that never looked at the training image is far from f_N = that image.
    ctx.model = Shrink()
    other = memorization.compute(ctx)
    assert (other["memorization_ratio"] > 0.05).all()
    np.testing.assert_allclose(other["empirical_mse"], out["empirical_mse"])
    # f_N's own error is E||x_1 - x||^2 (it returns the training image x_1). The identity, which
    # keeps each test image, is as far from f_N as the test images are, up to sigma^2: ratio 1.
    ctx.model = torch.nn.Identity()
    identity = memorization.compute(ctx)
    assert identity["relative_distance_to_empirical"][0] == pytest.approx(1.0, abs=0.05)


def test_memorizers_samples_are_copies_of_their_own_training_images(photos):
    s1, s2 = photos.train_subset(20, 0, 0), photos.train_subset(20, 1, 0)
    out = paired_samples.compute(_pair((NearestTraining(s1), NearestTraining(s2)), (s1, s2), photos))
    np.testing.assert_allclose(out["train_similarity"], 1.0, atol=1e-6)
    np.testing.assert_allclose(out["copy_ratio"], 0.0, atol=1e-6)
    np.testing.assert_array_equal(out["copy_fraction"], [1.0, 1.0])
    # Each shown sample is its own nearest training image.
    np.testing.assert_allclose(out["samples"], out["nearest_train"], atol=1e-6)
    # Disjoint training sets: the two memorizers cannot produce the same image.
    assert out["paired_similarity_median"] < 0.999


def test_twin_models_have_no_variance_and_identical_samples(photos):
    s1, s2 = photos.train_subset(20, 0, 0), photos.train_subset(20, 1, 0)
    twin = Shrink()
    ctx = _pair((twin, twin), (s1, s2), photos, n_test=16, n_sigma=4)
    variance = model_variance.compute(ctx)
    np.testing.assert_allclose(variance["model_variance"], 0.0, atol=0)
    assert (variance["model_variance_db"] < -200).all()  # floored at 1e-30, far below the noise
    np.testing.assert_allclose(variance["relative_model_variance"], 0.0, atol=0)
    samples = paired_samples.compute(ctx)
    np.testing.assert_allclose(samples["paired_similarity"], 1.0, atol=1e-9)
    assert samples["paired_similarity_median"] == pytest.approx(1.0)


def test_independent_errors_give_relative_variance_two():
    rng = np.random.default_rng(0)
    clean = rng.random((200, 1, 8, 8))
    f1 = clean + 0.1 * rng.standard_normal(clean.shape)
    f2 = clean + 0.1 * rng.standard_normal(clean.shape)
    variance, relative = model_variance.model_variance(f1, f2, clean)
    assert variance == pytest.approx(0.02, rel=0.03) and relative == pytest.approx(2.0, rel=0.03)


def test_n_star_is_the_first_n_reaching_the_level():
    n = np.array([1, 10, 100, 1000])
    assert paired_samples.n_star(n, np.array([0.2, 0.5, 0.93, 0.97]), 0.9) == 100
    assert paired_samples.n_star(n, np.array([0.2, np.nan, 0.5, 0.8]), 0.9) is None


def test_n_star_skips_an_n_where_unpaired_samples_agree_as_much():
    """Two collapsed models (every sample the same pattern) agree on paired and unpaired samples:
    not N*. A generalizing pair agrees on paired samples only."""
    n = np.array([1, 10, 100])
    paired = np.array([0.95, 0.5, 0.93])
    assert paired_samples.n_star(n, paired, 0.9, unpaired=np.array([0.94, 0.1, 0.05])) == 100
    assert paired_samples.n_star(n, paired, 0.9, unpaired=np.array([0.2, 0.1, 0.05])) == 1
    # a pair that makes noisy images worse is not a pair of denoisers
    assert paired_samples.n_star(n, paired, 0.9, denoising=np.array([False, True, True])) == 100
    rng = np.random.default_rng(0)
    pattern = rng.random((1, 8, 8))
    collapsed = np.stack([pattern + 0.01 * rng.standard_normal((6, 1, 8, 8)) for _ in range(2)])
    distinct = rng.random((6, 1, 8, 8))
    generalizing = np.stack([distinct, distinct + 0.01 * rng.standard_normal((6, 1, 8, 8))])
    assert paired_samples.unpaired_similarity(collapsed) > 0.99
    assert abs(paired_samples.unpaired_similarity(generalizing)) < 0.3
    assert np.isnan(paired_samples.unpaired_similarity(collapsed[:, :1]))


def test_failed_samples_count_as_disagreement_and_a_missing_control_is_not_passed():
    """A median over the pairs both samplers finished would let 4 survivors of 64 decide N*; a
    failed pair counts as -1 instead. An unpaired control that could not be computed (NaN) does
    not pass."""
    survivors = np.full(64, np.nan)
    survivors[:4] = 0.95
    assert paired_samples.paired_median(survivors) == -1.0
    mostly_done = np.full(64, 0.95)
    mostly_done[:4] = np.nan
    assert paired_samples.paired_median(mostly_done) == pytest.approx(0.95)
    n = np.array([1, 10])
    assert paired_samples.n_star(n, np.array([0.95, 0.95]), 0.9, unpaired=np.array([np.nan, 0.1])) == 10
    assert paired_samples.n_star(n, np.array([0.95, 0.95]), 0.9, unpaired=np.array([np.nan, np.nan])) is None
    # The bootstrap interval reads the same statistic: failed pairs count as -1.
    low, high = paired_samples.median_interval(survivors[None])
    assert low == high == -1.0


def test_beats_identity_reads_the_test_curves_of_every_done_model():
    import xarray as xr

    sigma = np.array([0.1, 1.0])  # input PSNR 20 dB and 0 dB: mean 10 dB
    psnr = np.zeros((1, 1, 3, 2, 1, 2, 2))
    psnr[..., 1, :] = [[12.0, 9.0]]  # test: mean 10.5 dB > 10 dB, for every model ...
    psnr[0, 0, 0, 1, 0, 1, :] = [9.0, 9.0]  # ... but at N = 1 the S2 model is worse than the identity
    psnr[0, 0, 2, 0, 0, 1, :] = [0.0, 0.0]  # at N = 100 S1 is worse too, but it failed (not done): ignored
    dims = ("arch", "image_class", "n_train", "subset", "seed")
    status = np.ones((1, 1, 3, 2, 1))
    status[0, 0, 2, 0, 0] = 2
    ds = xr.Dataset({"psnr": (dims + ("split", "sigma"), psnr), "status": (dims, status)},
                    coords={"image_class": ["photographs"], "n_train": [1, 10, 100], "split": ["train", "test"],
                            "sigma": sigma})
    assert paired_samples.beats_identity(ds, "photographs").tolist() == [False, True, True]
    assert paired_samples.beats_identity(ds.drop_vars("psnr"), "photographs").tolist() == [True, True, True]
