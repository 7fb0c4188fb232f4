"""`gahb verify`: a published cell recomputed from the entry's provenance matches; a cell whose
published score was changed (and the entry resealed) does not."""

import json

from gahb_bench.cli import main
from gahb_bench.leaderboard.entry import seal

LABEL = "generalization/faces N=2 S1 seed=0"


def test_a_recomputed_cell_matches_and_a_forged_one_does_not(board, capsys):
    folder, path = board
    entry = json.loads(path.read_text())
    assert LABEL in entry["cells"] and set(entry["cells"][LABEL]) == {"psnr_train", "psnr_test"}
    assert main(["verify", str(path), "--cell", LABEL, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert f"{LABEL}: psnr_test published" in out and "matches" in out
    entry["cells"][LABEL]["psnr_test"] += 3.0
    path.write_text(json.dumps(seal(entry)))  # a forger who recomputes the digest
    assert main(["verify", str(path), "--cell", LABEL, "--quiet"]) == 1
    assert "MISMATCH" in capsys.readouterr().out


def test_an_unknown_cell_or_entry_is_a_one_line_error(board, tmp_path, capsys):
    _, path = board
    assert main(["verify", str(path), "--cell", "generalization/faces N=3 S1 seed=0"]) == 2
    assert "has no cell 'generalization/faces N=3 S1 seed=0'" in capsys.readouterr().err
    assert main(["verify", str(tmp_path / "none.json")]) == 2
    assert "does not exist" in capsys.readouterr().err
