"""Preparing real image files: sources, counts, the Zarr store, errors, and the `prepared` class."""

import io
import json

import numpy as np
import pytest
from PIL import Image

from gahb_bench.data import sources
from gahb_bench.data.prepare import DataError, data_root, open_prepared, prepare_dataset
from gahb_bench.image_classes import prepared as prepared_module
from gahb_bench.image_classes.prepared import PreparedDataset, gahb_register_image_classes

N_DISTINCT = 30


def _noise_image(rng, h, w):
    """A random image with structure at every scale of the 20×20 pooling (distinct ones decorrelate)."""
    coarse = rng.random((h // 2 + 1, w // 2 + 1))
    return np.kron(coarse, np.ones((2, 2)))[:h, :w]


def _save(path, grey, mode="L", fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    u8 = np.round(np.clip(grey, 0, 1) * 255).astype(np.uint8)
    image = Image.fromarray(u8)
    if mode != "L":
        image = image.convert(mode)
    image.save(path, format=fmt)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """30 distinct real PNG/JPEG files, a brightness-rescaled noisy copy, 2 broken files, a text file."""
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    images = {}
    for k in range(N_DISTINCT):
        h, w = (48, 64) if k % 3 else (64, 40)
        grey = _noise_image(rng, h, w)
        sub = "a" if k < 10 else "b/c"
        ext, mode = [(".png", "L"), (".jpg", "RGB"), (".PNG", "RGBA"), (".jpeg", "L")][k % 4]
        name = f"{sub}/img{k:02d}{ext}"
        _save(root / name, grey, mode)
        images[name] = grey
    # the near-duplicate of a/img02: darker, shifted, noised; sorts after it
    dup = 0.8 * images["a/img02.PNG"] + 0.1 + 0.01 * rng.standard_normal(images["a/img02.PNG"].shape)
    _save(root / "a/img02_copy.png", dup)
    (root / "a/broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + rng.bytes(300))  # garbage after the signature
    buf = io.BytesIO()
    Image.fromarray((images["b/c/img12.png"] * 255).astype(np.uint8)).save(buf, format="JPEG")
    (root / "b/truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (root / "b/notes.txt").write_text("not an image")
    return root


@pytest.fixture(scope="module")
def prepared(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("data-root")
    summary = prepare_dataset("folder", folder, data_root=out, name="photos", size=24, progress=False)
    return out, summary


def test_counts(prepared):
    _, summary = prepared
    assert summary["counts"] == {
        "read": N_DISTINCT + 3, "skipped_unreadable": 2, "skipped_unsupported": 0, "skipped_wrong_shape": 0,
        "decoded": N_DISTINCT + 1, "removed_duplicates": 1, "kept": N_DISTINCT,
    }
    assert summary["dedup"]["pairs_compared"] == (N_DISTINCT + 1) * N_DISTINCT // 2
    assert summary["dedup"]["pairs_found"] == 1


def test_store_content(prepared, folder):
    import zarr

    root, summary = prepared
    group = zarr.open_group(root / "photos.zarr", mode="r")
    files = group["files"][:].tolist()
    dropped = {"a/img02_copy.png", "a/broken.png", "b/truncated.jpg", "b/notes.txt"}
    listed = sources.list_images(folder)
    assert "b/notes.txt" not in listed and len(listed) == N_DISTINCT + 3
    assert files == [f for f in listed if f not in dropped]  # source order, sorted relative paths
    assert len(files) == N_DISTINCT and "a/img02.PNG" in files
    assert group["duplicate_files"][:].tolist() == ["a/img02_copy.png"]
    assert group["duplicate_of"][:].tolist() == ["a/img02.PNG"]
    attrs = dict(group.attrs)
    assert attrs["source"] == "folder" and attrs["size"] == 24 and attrs["counts"] == summary["counts"]
    assert sorted(name for name, _ in attrs["skipped"]) == ["a/broken.png", "b/truncated.jpg"]
    assert "gahb_bench_version" in attrs and attrs["dedup"]["threshold"] == 0.95
    images = open_prepared("photos", data_root=root)
    assert images.shape == (N_DISTINCT, 24, 24) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0
    for k in (0, 7, 29):  # each stored image is exactly its file, read, cropped and resized
        np.testing.assert_array_equal(images[k], sources.load_image(folder / files[k], "folder", 24))
    assert not [p.name for p in root.iterdir() if p.name.startswith(".")]  # no scratch left behind


def test_existing_dataset_and_overwrite(prepared, folder):
    root, summary = prepared
    with pytest.raises(DataError, match="already exists"):
        prepare_dataset("folder", folder, data_root=root, name="photos", size=24, progress=False)
    before = open_prepared("photos", data_root=root)
    again = prepare_dataset("folder", folder, data_root=root, name="photos", size=24, progress=False,
                            overwrite=True, workers=3, max_memory_bytes=1 << 20)
    assert again["counts"] == summary["counts"]
    np.testing.assert_array_equal(open_prepared("photos", data_root=root), before)


def test_errors(tmp_path, folder):
    with pytest.raises(DataError, match="does not exist"):
        prepare_dataset("folder", tmp_path / "nowhere", data_root=tmp_path, progress=False)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(DataError, match="no image files"):
        prepare_dataset("folder", tmp_path / "empty", data_root=tmp_path, progress=False)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.jpg").write_bytes(b"not a jpeg at all")
    with pytest.raises(DataError, match="none of the 1 image files"):
        prepare_dataset("folder", tmp_path / "junk", data_root=tmp_path, progress=False)
    assert not (tmp_path / "folder.zarr").exists()
    with pytest.raises(DataError, match="unknown source"):
        prepare_dataset("imagenet", folder, data_root=tmp_path, progress=False)
    with pytest.raises(DataError, match="gahb data prepare celeba --src DIR"):
        open_prepared("celeba", data_root=tmp_path)


def test_corrupt_store_is_reported(prepared, tmp_path, folder):
    prepare_dataset("folder", folder, data_root=tmp_path, name="bad", size=24, progress=False)
    meta = tmp_path / "bad.zarr" / "images" / "zarr.json"
    spec = json.loads(meta.read_text())
    spec["shape"] = [3, 24, 24]
    meta.write_text(json.dumps(spec))
    with pytest.raises(DataError, match="corrupt.*--overwrite"):
        open_prepared("bad", data_root=tmp_path)
    (tmp_path / "bad.zarr" / "zarr.json").write_text("{garbage")
    with pytest.raises(DataError, match="bad"):
        open_prepared("bad", data_root=tmp_path)


def test_data_root_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("GAHB_DATA_ROOT", str(tmp_path))
    assert data_root() == tmp_path
    monkeypatch.delenv("GAHB_DATA_ROOT")
    assert str(data_root()) == "gahb-data"


def test_celeba_crop_geometry(tmp_path):
    rows, cols = np.mgrid[0:218, 0:178]
    image = rows * 1000 + cols
    crop = sources.celeba_crop(image)
    assert crop.shape == (160, 160)
    assert crop[0, 0] == 29 * 1000 + 9 and crop[-1, -1] == 188 * 1000 + 168
    with pytest.raises(ValueError, match="218x178"):
        sources.celeba_crop(np.zeros((160, 160)))
    # through a real file: at size 160 no resize happens, so the stored image is the crop itself
    grey = (rows + cols) % 251 / 250.0
    _save(tmp_path / "celeba" / "000001.png", grey, mode="RGB")
    _save(tmp_path / "celeba" / "000002.jpg", grey[:200], mode="RGB")  # not 218×178: skipped
    out = sources.load_image(tmp_path / "celeba" / "000001.png", "celeba", 160)
    np.testing.assert_allclose(out, np.round(grey * 255)[29:-29, 9:-9] / 255, atol=1e-6)
    summary = prepare_dataset("celeba", tmp_path / "celeba", data_root=tmp_path / "root", size=80, progress=False)
    assert summary["counts"]["skipped_wrong_shape"] == 1 and summary["counts"]["kept"] == 1
    assert open_prepared("celeba", data_root=tmp_path / "root").shape == (1, 80, 80)


def test_centre_square_and_resize():
    image = np.arange(50 * 70, dtype=np.float32).reshape(50, 70)
    square = sources.centre_square(image)
    np.testing.assert_array_equal(square, image[:, 10:60])
    assert sources.centre_square(image.T).shape == (50, 50)
    smooth = np.full((90, 90), 0.25, np.float32)
    np.testing.assert_allclose(sources.resize_square(smooth, 30), 0.25, atol=1e-6)  # bicubic keeps constants


def test_prepared_class_splits(prepared, monkeypatch):
    root, _ = prepared
    ds = PreparedDataset(24, dataset="photos", data_root=str(root), test_fraction=0.2)
    test_pool, train_pool = ds.split()
    assert len(test_pool) == 6 and len(train_pool) == 24 and ds.max_train() == 12
    assert set(test_pool).isdisjoint(train_pool) and len(set(test_pool) | set(train_pool)) == N_DISTINCT
    s0, s1 = ds.subset_indices(12, 0, seed=5), ds.subset_indices(12, 1, seed=5)
    assert set(s0).isdisjoint(s1)
    assert set(s0) | set(s1) == set(train_pool)
    np.testing.assert_array_equal(ds.subset_indices(4, 0, seed=5), s0[:4])  # nested in N
    assert not np.array_equal(ds.subset_indices(12, 0, seed=6), s0)  # the run seed reshuffles
    # the test pool is fixed: another run seed reorders it, never changes it
    assert set(ds.test_indices(6, seed=0)) == set(ds.test_indices(6, seed=9)) == set(test_pool)
    images = open_prepared("photos", data_root=root)
    x = ds.train_subset(5, 1, seed=5)
    assert x.shape == (5, 1, 24, 24) and x.dtype == np.float32
    np.testing.assert_array_equal(x[:, 0], images[s1[:5]])
    np.testing.assert_array_equal(ds.test_set(3, seed=2)[:, 0], images[ds.test_indices(3, seed=2)])
    with pytest.raises(ValueError, match="exceeds"):
        ds.train_subset(13, 0, seed=5)
    # a dataset too large to cache is read by orthogonal selection: same images, any order, repeats
    uncached = PreparedDataset(24, dataset="photos", data_root=str(root), test_fraction=0.2)
    monkeypatch.setattr(prepared_module, "CACHE_BYTES", 0)
    idx = np.array([17, 3, 3, 29, 0])
    np.testing.assert_array_equal(uncached._read(idx)[:, 0], images[idx])
    assert uncached._cache is None
    small = PreparedDataset(12, dataset="photos", data_root=root, test_fraction=0.2)
    y = small.train_subset(5, 1, seed=5)
    assert y.shape == (5, 1, 12, 12)
    np.testing.assert_allclose(y.mean(axis=(2, 3)), x.mean(axis=(2, 3)), atol=0.02)  # a resize keeps the mean
    assert ds.declares()["prepared"] is True and ds.declares()["max_train"] == 12


def test_prepared_class_missing_dataset(tmp_path):
    registered = []
    gahb_register_image_classes(registered.append)
    (record,) = registered
    assert record.name == "prepared" and record.params["dataset"] == "celeba"
    ds = record.build(80, **{**record.params, "data_root": str(tmp_path)})  # building never fails
    assert ds.declares() == {"dataset": "celeba", "prepared": False,
                             "prepare": "gahb data prepare celeba --src DIR"}
    with pytest.raises(DataError, match="gahb data prepare celeba --src DIR"):
        ds.train_subset(1, 0, seed=0)
    with pytest.raises(ValueError, match="test_fraction"):
        PreparedDataset(24, test_fraction=0.0)
