"""`gahb data prepare`: a folder of real image files in, a Zarr dataset out; errors in one line."""

import numpy as np
import zarr
from PIL import Image

from gahb_bench.cli import main


def _folder(tmp_path):
    src = tmp_path / "photos"
    (src / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for k in range(6):
        pixels = (rng.uniform(size=(40, 50, 3)) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(src / ("sub" if k % 2 else ".") / f"img{k}.png")
    Image.fromarray(pixels).save(src / "copy.jpg", quality=95)  # a near-duplicate of img5
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return src


def test_prepare_folder_end_to_end(tmp_path, capsys):
    src = _folder(tmp_path)
    code = main(["data", "prepare", "folder", "--src", str(src), "--size", "16", "--name", "mine",
                 "--data-root", str(tmp_path / "root"), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "skipped unreadable: 1" in out and "removed duplicates: 1" in out and "kept: 6" in out
    group = zarr.open_group(str(tmp_path / "root" / "mine.zarr"), mode="r")
    assert group["images"].shape == (6, 16, 16)
    assert 0.0 <= float(np.min(group["images"][:])) and float(np.max(group["images"][:])) <= 1.0


def test_prepare_errors_are_one_line(tmp_path, capsys):
    assert main(["data", "prepare", "folder", "--src", str(tmp_path / "missing"), "--data-root",
                 str(tmp_path / "root")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gahb: error: ") and "does not exist" in err and len(err.splitlines()) == 1
    src = _folder(tmp_path)
    args = ["data", "prepare", "folder", "--src", str(src), "--size", "16", "--data-root", str(tmp_path / "root"),
            "--quiet"]
    assert main(args) == 0
    before = (tmp_path / "root" / "folder.zarr" / "images" / "zarr.json").read_bytes()
    assert main(args) == 2  # exists: refuse unless --overwrite, keep what is there
    assert "--overwrite" in capsys.readouterr().err
    assert (tmp_path / "root" / "folder.zarr" / "images" / "zarr.json").read_bytes() == before
