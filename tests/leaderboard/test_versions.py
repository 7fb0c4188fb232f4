"""Battery versions on the leaderboard: a version bump that changed one preset leaves the other
presets' stores and entries comparable (``Battery.numbers_since``), and only those."""

import json
import shutil
from pathlib import Path

import pytest
import zarr

import gahb_bench
from gahb_bench.cli import main
from gahb_bench.contracts import version_order
from gahb_bench.leaderboard.entry import entry_id, seal
from gahb_bench.registry import get_registry, reset_registry
from helpers import register_battery


def _board(numbers_since):
    """The board battery (version 2, reading 1; registered by the conftest) with ``numbers_since``."""
    return gahb_bench.Battery(name="board", version="2", presets=get_registry().battery("board").presets,
                              readable_versions=("1",), numbers_since=numbers_since)


@pytest.fixture()
def same_numbers(fresh_registry):
    """The board battery says its tiny preset's numbers are those of version 1."""
    battery = _board({"tiny": "1"})
    reset_registry()
    undo = register_battery(battery)
    yield
    undo()


def _as_version_1(folder, path):
    """Copy the entry at ``path`` as the same claim made with battery version 1 (figures too);
    returns the copy's path."""
    entry = json.loads(path.read_text())
    entry["battery_version"] = "1"
    entry["id"] = entry_id(entry)
    shutil.copytree(folder / "figures" / path.stem, folder / "figures" / entry["id"])
    copy = folder / "entries" / f"{entry['id']}.json"
    copy.write_text(json.dumps(seal(entry)))
    return copy


def _store_of_version(store, version):
    root = zarr.open_group(str(store), mode="r+")
    identity = json.loads(root.attrs["identity"])
    identity["battery_version"] = version
    root.attrs["identity"] = json.dumps(identity, sort_keys=True)


def test_same_numbers_follows_numbers_since_in_version_order():
    tiny = get_registry().battery("board").presets["tiny"]
    battery = gahb_bench.Battery(name="b", version="0.12", presets={"a": tiny, "c": tiny},
                                 readable_versions=("0.9", "0.10", "0.11", "1.²"), numbers_since={"a": "0.10"})
    assert [battery.same_numbers("a", v) for v in ("0.9", "0.10", "0.11", "0.12", "0.13", "1.²")] == \
        [False, True, True, True, False, False]
    assert version_order("0.10") == (0, 10) and version_order("1.²") is None and version_order("1.") is None
    assert [battery.same_numbers("c", v) for v in ("0.11", "0.12")] == [False, True]
    assert battery.table_version("a", "0.11") == "0.12" and battery.table_version("a", "0.9") == "0.9"


@pytest.mark.parametrize("numbers_since, message", [
    ({"nope": "1"}, "numbers_since names 'nope', which is not a preset"),
    ({"tiny": "0"}, r"numbers_since\['tiny'\] = '0' must be a dotted integer version among 2, 1"),
])
def test_numbers_since_must_name_a_preset_and_a_known_version(numbers_since, message):
    with pytest.raises(ValueError, match=message):
        _board(numbers_since)


def test_without_the_same_numbers_two_versions_are_two_tables(board):
    folder, path = board
    _as_version_1(folder, path)
    assert main(["leaderboard", "build", str(folder)]) == 0
    index = (folder / "site" / "index.html").read_text()
    assert "battery board 1, preset tiny</h2>" in index and "battery board 2, preset tiny</h2>" in index


def test_with_the_same_numbers_an_earlier_entry_joins_the_table_and_is_the_same_claim(board, same_numbers, capsys):
    folder, path = board
    copy = _as_version_1(folder, path)
    assert main(["leaderboard", "check", str(folder)]) == 1
    assert "duplicates" in capsys.readouterr().out
    path.unlink()
    shutil.rmtree(folder / "figures" / path.stem)
    assert main(["leaderboard", "build", str(folder)]) == 0
    index = (folder / "site" / "index.html").read_text()
    assert "battery board 2, preset tiny <small>(with entries of 1: the same numbers for this preset)" in index
    assert f'href="entries/{copy.stem}.html"' in index and "battery board 1," not in index


def test_publishing_over_an_earlier_version_with_the_same_numbers_needs_replace_and_removes_it(
        board, same_numbers, store_copy, capsys):
    folder, path = board
    copy = _as_version_1(folder, path)
    path.unlink()
    shutil.rmtree(folder / "figures" / path.stem)
    assert main(["publish", str(store_copy), "--leaderboard", str(folder)]) == 2
    assert f"{copy.name} makes the same claim" in capsys.readouterr().err and copy.exists()
    assert main(["publish", str(store_copy), "--leaderboard", str(folder), "--replace"]) == 0
    assert f"removed: {copy} (the same claim, replaced)" in capsys.readouterr().out
    assert not copy.exists() and not (folder / "figures" / copy.stem).exists()
    assert [p.name for p in (folder / "entries").glob("*.json")] == [path.name]


class Died(BaseException):
    """A process's death at a chosen step (no handler of gahb catches it)."""


@pytest.mark.parametrize("crash_in", ["unlink", "replace"])
def test_a_publish_that_dies_while_replacing_never_leaves_two_entries_of_one_claim(
        board, same_numbers, store_copy, monkeypatch, crash_in, capsys):
    # Publishing over an earlier version's entry removes it and renames the new one in: a crash
    # at either step leaves a leaderboard that still checks, and the next publish completes it.
    folder, path = board
    copy = _as_version_1(folder, path)
    path.unlink()
    shutil.rmtree(folder / "figures" / path.stem)
    real = getattr(Path, crash_in)

    def crash(self, *args, **kwargs):
        if self.parent.name == "entries":
            raise Died()  # as if the process died here
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, crash_in, crash)
    with pytest.raises(Died):
        main(["publish", str(store_copy), "--leaderboard", str(folder), "--replace"])
    monkeypatch.undo()
    entries = sorted(p.name for p in (folder / "entries").glob("*.json"))
    assert entries == ([copy.name] if crash_in == "unlink" else [])
    assert main(["leaderboard", "check", str(folder)]) == 0
    assert main(["publish", str(store_copy), "--leaderboard", str(folder), "--replace"]) == 0
    assert [p.name for p in (folder / "entries").glob("*.json")] == [path.name]
    capsys.readouterr()


def test_a_store_of_an_earlier_version_resumes_and_publishes_as_itself_only_with_the_same_numbers(
        store_copy, tmp_path, capsys, request):
    _store_of_version(store_copy, "1")
    assert main(["publish", str(store_copy), "--leaderboard", str(tmp_path / "a")]) == 2
    assert ("was made by battery board 1, whose tiny preset differs from the installed 2's (other numbers or other "
            "stored variables): it cannot be resumed or published") in capsys.readouterr().err
    assert main(["run", "--arch", "tiny-cnn", "--param", "depth=3", "--param", "width=4", "--battery", "board",
                 "--preset", "tiny", "--store", str(store_copy)]) == 2
    assert "a 2 run needs another store" in capsys.readouterr().err
    assert main(["run", "--arch", "tiny-cnn", "--param", "depth=3", "--param", "width=5", "--battery", "board",
                 "--preset", "tiny", "--store", str(store_copy)]) == 2  # another run: what differs is named
    assert "battery_version: store has '1', this run '2'; arch_params: store has" in capsys.readouterr().err
    _store_of_version(store_copy, "3")
    assert main(["run", "--arch", "tiny-cnn", "--param", "depth=3", "--param", "width=4", "--battery", "board",
                 "--preset", "tiny", "--store", str(store_copy)]) == 2
    assert "was made by battery board 3, which this install (battery 2) does not know" in capsys.readouterr().err
    _store_of_version(store_copy, "1")
    request.getfixturevalue("same_numbers")
    assert main(["run", "--arch", "tiny-cnn", "--param", "depth=3", "--param", "width=4", "--battery", "board",
                 "--preset", "tiny", "--store", str(store_copy)]) == 0
    captured = capsys.readouterr()
    assert "already done" in captured.out
    assert "the store was made by battery board 1, whose tiny numbers are 2's: resuming it as 1" in captured.err
    assert main(["publish", str(store_copy), "--leaderboard", str(tmp_path / "b")]) == 0
    entry = json.loads(next((tmp_path / "b" / "entries").glob("*.json")).read_text())
    assert entry["battery_version"] == "1"


def test_verify_refuses_an_entry_whose_version_has_other_numbers(board, capsys):
    folder, path = board
    copy = _as_version_1(folder, path)
    assert main(["verify", str(copy), "--quiet"]) == 2
    assert "whose tiny preset differs from the installed 2's (other numbers or other stored" in capsys.readouterr().err
