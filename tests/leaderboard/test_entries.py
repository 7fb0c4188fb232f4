"""`gahb leaderboard check`: every kind of bad entry is named by file and field."""

import json

import pytest

from gahb_bench.cli import main
from gahb_bench.leaderboard.entry import MAX_BYTES, SCHEMA, canonical_digest, entry_id, seal


def _edit(path, change, reseal=False):
    entry = json.loads(path.read_text())
    change(entry)
    if reseal:
        entry = seal(entry)
    path.write_text(json.dumps(entry))


def _check(folder, capsys):
    code = main(["leaderboard", "check", str(folder)])
    return code, capsys.readouterr().out


def test_a_published_entry_checks_and_its_digest_covers_its_content(board, capsys):
    folder, path = board
    entry = json.loads(path.read_text())
    assert entry["entry_digest"] == canonical_digest(entry) and entry["id"] == entry_id(entry)
    assert _check(folder, capsys) == (0, f"leaderboard {folder}: 1 entry checked, 0 problem(s)\n")


def test_a_score_edited_by_hand_is_caught(board, capsys):
    folder, path = board
    _edit(path, lambda e: e["scores"]["excess_gap_db"].update(value=-3.0))
    code, out = _check(folder, capsys)
    assert code == 1 and f"{path.name}: entry_digest: does not match the entry's content" in out


@pytest.mark.parametrize("change, field, message", [
    (lambda e: e.pop("provenance"), "provenance", "missing"),
    (lambda e: e.update(n_parameters="many"), "n_parameters", "expected int, got str"),
    (lambda e: e["scores"]["excess_gap_db"].update(value="0.1"), "scores.excess_gap_db.value",
     "expected a number or null, got str"),
    (lambda e: e["scores"].update(made_up={"value": 1.0, "low": None, "high": None, "note": ""}),
     "scores.made_up", "not a score this install defines"),
    (lambda e: e.update(battery_version="0"), "battery_version", "version '0' of battery 'board' is unknown here"),
    (lambda e: e.update(battery="nope"), "battery", "unknown battery 'nope'"),
    (lambda e: e.update(figures=["../../etc/passwd"]), "figures[0]", "not a plain PNG file name"),
    (lambda e: e.update(figures=["page.html"]), "figures[0]", "not a plain PNG file name"),
    (lambda e: e["cells"].update(extra={"psnr_test": 1.0}), "cells.extra", "expected numbers psnr_train, psnr_test"),
    (lambda e: e.update(n_parameters=True), "n_parameters", "expected int, got bool"),
    (lambda e: e.update(extra=1), "extra", "not a field of the entry schema"),
    (lambda e: e["inductive_biases"].update(colour="blue"), "inductive_biases.colour",
     "unknown axis; axes: locality"),
    (lambda e: e["inductive_biases"].update(locality=3), "inductive_biases.locality",
     "expected a description of 1 to 60 characters"),
    (lambda e: e.pop("inductive_biases"), "inductive_biases", "missing"),
    (lambda e: e.update(preset="bogus"), "preset", "battery 'board' has no preset 'bogus' (presets: tiny, other)"),
    (lambda e: e.update(n_parameters=-5), "n_parameters", "a trained network has parameters, got -5"),
    (lambda e: e.update(cells={}), "cells", "empty: an entry records the PSNR of each done model cell"),
    (lambda e: e["acceleration"].update({"rm -rf": True}), "acceleration.rm -rf", "not a speed-up flag"),
    (lambda e: e["acceleration"].update(precision="fp8"), "acceleration.precision",
     "expected one of float32, tf32, bf16, got 'fp8'"),
    (lambda e: e["acceleration"].update(compile="yes"), "acceleration.compile", "expected true or false, got 'yes'"),
])
def test_a_missing_mistyped_or_unknown_field_is_named(board, capsys, change, field, message):
    folder, path = board
    _edit(path, change, reseal=True)
    code, out = _check(folder, capsys)
    assert code == 1 and f"invalid: {path.name}: {field}: {message}" in out


@pytest.mark.parametrize("number, message", [
    ("-1e999", "-1e999 is out of the range of a double"),  # parses to -inf: the site could not sort it
    ("1" + "0" * 400, "is out of range (|n| < 2**63)"),  # a float() of it overflows when rendered
])
def test_a_number_out_of_range_is_refused_as_it_is_read(board, capsys, number, message):
    folder, path = board
    entry = json.loads(path.read_text())
    entry["scores"]["excess_gap_db"]["value"] = 12345.5
    text = json.dumps(seal(entry)).replace("12345.5", number)
    path.write_text(text)
    code, out = _check(folder, capsys)
    assert code == 1 and f"invalid: {path.name}: file: not valid JSON" in out and message in out
    assert main(["leaderboard", "build", str(folder)]) == 2  # a one-line refusal, not an OverflowError


def test_params_and_flags_written_differently_are_the_same_claim(board, capsys):
    """width 4.0 builds the network width 4 builds, and flags spelled out at their defaults are
    no flags: the same claim, so the same id (the copy is caught as a duplicate)."""
    folder, path = board
    entry = json.loads(path.read_text())
    same = {**entry, "arch_params": {k: float(v) if isinstance(v, int) else v for k, v in entry["arch_params"].items()},
            "acceleration": {"precision": "float32", "channels_last": False, "compile": False}}
    assert json.dumps(same["arch_params"]) != json.dumps(entry["arch_params"]) and entry_id(same) == entry_id(entry)
    flagged = {**entry, "acceleration": {"precision": "bf16"}}
    assert entry_id(flagged) != entry_id(entry)
    assert entry_id(flagged) == entry_id({**entry, "acceleration": {"precision": "bf16", "channels_last": False,
                                                                    "compile": False}})
    (folder / "entries" / "other.json").write_text(json.dumps(seal({**same, "id": entry["id"]})))
    code, out = _check(folder, capsys)
    assert code == 1 and "other.json: id: the file of entry" in out


def test_an_entry_of_a_readable_earlier_version_is_accepted(board, capsys):
    folder, path = board
    entry = json.loads(path.read_text())
    entry["battery_version"] = "1"
    entry["id"] = entry_id(entry)
    path.unlink()
    (folder / "entries" / f"{entry['id']}.json").write_text(json.dumps(seal(entry)))
    (folder / "figures" / path.stem).rename(folder / "figures" / entry["id"])
    assert _check(folder, capsys)[0] == 0


def test_a_duplicate_and_files_that_are_not_plain_json_are_refused(board, capsys, tmp_path):
    folder, path = board
    entries = folder / "entries"
    (entries / "copy.json").write_text(path.read_text())
    (entries / "huge.json").write_text(" " * (MAX_BYTES + 1))
    (entries / "deep.json").write_text("[" * 100_000)
    (entries / "nan.json").write_text(path.read_text().replace(f'"schema": {SCHEMA}', '"schema": NaN'))
    (entries / "link.json").symlink_to("/dev/zero")
    (entries / "folder.json").mkdir()
    code, out = _check(folder, capsys)
    assert code == 1
    assert f"invalid: copy.json: id: the file of entry '{path.stem}' must be named {path.name} (a copy" in out
    assert f"invalid: huge.json: file: over the limit of {MAX_BYTES} bytes" in out
    assert "invalid: deep.json: file: not valid JSON" in out
    assert "invalid: nan.json: file: not valid JSON (NaN is not a number JSON allows" in out
    assert "invalid: link.json: file: not a regular file" in out and "invalid: folder.json: file: not a regular" in out


def test_a_figure_that_is_a_link_or_not_a_png_is_missing(board, capsys, tmp_path):
    folder, path = board
    entry = json.loads(path.read_text())
    figure = folder / "figures" / entry["id"] / entry["figures"][0]
    secret = tmp_path / "secret.txt"
    secret.write_text("private")
    figure.unlink()
    figure.symlink_to(secret)
    code, out = _check(folder, capsys)
    assert code == 1 and f"{path.name}: figures: 1 missing from figures/{entry['id']}/ (or not a PNG" in out
    figure.unlink()
    figure.write_text("<svg onload=alert(1)>")
    assert _check(folder, capsys)[0] == 1


def test_a_folder_without_entries_is_a_one_line_error(tmp_path, capsys):
    assert main(["leaderboard", "check", str(tmp_path)]) == 2
    assert "has no entries/ folder" in capsys.readouterr().err


def test_the_flags_an_entry_may_record_are_the_runs_flags_at_their_defaults():
    from dataclasses import asdict

    from gahb_bench.acceleration import Acceleration
    from gahb_bench.leaderboard.entry import FLAG_DEFAULTS

    assert FLAG_DEFAULTS == asdict(Acceleration())
