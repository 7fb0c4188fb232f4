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


def test_a_parameter_count_the_architecture_does_not_build_is_a_mismatch(board, capsys):
    folder, path = board
    entry = json.loads(path.read_text())
    built = entry["n_parameters"]
    entry["n_parameters"] = built + 1000
    path.write_text(json.dumps(seal(entry)))
    assert main(["verify", str(path), "--cell", LABEL, "--quiet"]) == 1
    out = capsys.readouterr().out
    assert f"parameters: published {built + 1000}, its architecture and params build {built} (MISMATCH)" in out
    assert "psnr_test published" in out and "not recomputed (another network than the entry claims)" in out
    assert out.rstrip().splitlines()[-1].startswith("MISMATCH")


def test_an_entry_made_by_another_plugin_version_is_recomputed_with_a_note(board, capsys):
    folder, path = board
    entry = json.loads(path.read_text())
    installed = entry["arch_plugin_version"]
    entry["arch_plugin_version"] = "0.0.1"
    path.write_text(json.dumps(seal(entry)))
    main(["verify", str(path), "--cell", LABEL, "--quiet"])
    assert (f"note: the entry's arch_plugin_version is '0.0.1', the installed one {installed!r} (recomputed with "
            "other code)") in capsys.readouterr().out


def test_an_unknown_cell_or_entry_is_a_one_line_error(board, tmp_path, capsys):
    _, path = board
    assert main(["verify", str(path), "--cell", "generalization/faces N=3 S1 seed=0"]) == 2
    assert "has no cell 'generalization/faces N=3 S1 seed=0'" in capsys.readouterr().err
    assert main(["verify", str(tmp_path / "none.json")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_broken_entry_file_or_a_folder_is_a_one_line_error_not_a_mismatch(tmp_path, capsys):
    broken = tmp_path / "broken.json"
    broken.write_text("{bad")
    assert main(["verify", str(broken)]) == 2  # 1 would say "mismatch"
    assert "broken.json: file: not valid JSON" in capsys.readouterr().err
    link = tmp_path / "link.json"
    link.symlink_to(broken)
    assert main(["verify", str(link)]) == 2
    assert "not a regular file" in capsys.readouterr().err
    assert main(["verify", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_an_entry_whose_architecture_is_not_installed_names_the_plugin_to_install(board, capsys):
    from gahb_bench.leaderboard.entry import entry_id

    _, path = board
    entry = json.loads(path.read_text())
    entry.update(arch="absent-net", arch_plugin="absent", arch_distribution="absent-zoo")
    entry["id"] = entry_id(entry)
    moved = path.parent / f"{entry['id']}.json"
    moved.write_text(json.dumps(seal(entry)))
    assert main(["verify", str(moved), "--cell", LABEL, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "the entry's architecture 'absent-net' is not installed" in err
    assert "the plugin 'absent' of the distribution 'absent-zoo'" in err and "install it to verify" in err
    assert len(err.strip().splitlines()) == 1
