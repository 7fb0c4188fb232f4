"""`gahb publish`: only a complete, sealed, digest-consistent store of a known battery becomes an
entry; the entry, its figures and the site are written together."""

import json

import pytest
import zarr

from gahb_bench.cli import main
from helpers import tree_snapshot


def _publish(store, folder, *extra):
    return main(["publish", str(store), "--leaderboard", str(folder), *extra])


def test_round_trip_publish_check_and_site(store_copy, tmp_path, capsys):
    folder = tmp_path / "lb"
    assert _publish(store_copy, folder) == 0
    entry_path = next((folder / "entries").glob("*.json"))
    entry = json.loads(entry_path.read_text())
    assert entry["arch"] == "tiny-cnn" and entry["battery_version"] == "2" and entry["n_parameters"] > 0
    assert set(entry["scores"]) >= {"excess_gap_db", "model_variance_db", "optimality_gap_db"}
    assert entry["scores"]["excess_gap_db"]["value"] is not None
    from gahb_bench.provenance import cpu_name
    assert entry["provenance"]["cpu"] == cpu_name() and "(" in cpu_name()  # the model and the instruction set
    assert entry["figures"] and all((folder / "figures" / entry["id"] / f).is_file() for f in entry["figures"])
    assert main(["leaderboard", "check", str(folder)]) == 0
    index = (folder / "site" / "index.html").read_text()
    assert f'href="entries/{entry["id"]}.html"' in index and "battery board 2, preset tiny" in index
    page = (folder / "site" / "entries" / f"{entry['id']}.html").read_text()
    for name in entry["figures"]:
        assert f'src="../figures/{entry["id"]}/{name}"' in page
        assert (folder / "site" / "figures" / entry["id"] / name).is_file()


def test_publishing_twice_needs_replace(store_copy, tmp_path, capsys):
    folder = tmp_path / "lb"
    assert _publish(store_copy, folder) == 0
    before = tree_snapshot(folder / "entries")
    assert _publish(store_copy, folder) == 2
    assert "use --replace" in capsys.readouterr().err
    assert tree_snapshot(folder / "entries") == before
    assert _publish(store_copy, folder, "--replace") == 0
    # the replaced entry is the new one itself (same id): it stays, with its figures
    assert tree_snapshot(folder / "entries").keys() == before.keys()
    ident = next(iter(before)).removesuffix(".json")
    out = capsys.readouterr().out
    assert any((folder / "figures" / ident).iterdir()) and "removed:" not in out
    assert f"replaced: {folder / 'entries' / ident}.json (its earlier publication, figures too)" in out


def _edit_identity(store):
    root = zarr.open_group(str(store), mode="r+")
    identity = json.loads(root.attrs["identity"])
    identity["arch_params"]["width"] = 64
    root.attrs["identity"] = json.dumps(identity, sort_keys=True)


def _fail_a_cell(store):
    status = zarr.open_array(str(store / "generalization" / "status"), mode="r+")
    status[(0,) * status.ndim] = 3


def _reverse_sigma(store):
    """Reverse the σ coordinate of the denoising curves: no digest covers coordinates, yet every
    curve and score is read by them."""
    sigma = zarr.open_array(str(store / "generalization" / "sigma"), mode="r+")
    sigma[:] = sigma[:][::-1]


def _hide_the_edit_from_the_size_filter(store):
    """The identity edited, and the attribute the parameter-count check once filtered by emptied."""
    _edit_identity(store)
    zarr.open_group(str(store), mode="r+").attrs["image_sizes"] = {}


@pytest.mark.parametrize("damage, message", [
    (_reverse_sigma, "has coordinates its battery does not make (generalization: coordinate 'sigma' is"),
    (lambda s: zarr.open_group(str(s), mode="r+").attrs.update({"n_parameters": 1000}),
     "its n_parameters attribute says 1000"),
    (_hide_the_edit_from_the_size_filter, "the identity was edited"),
    (lambda s: zarr.open_group(str(s), mode="r+").attrs.update({"scores_digest": "0" * 64}),
     "do not match the scores_digest its run recorded"),
    (lambda s: zarr.open_group(str(s), mode="r+").attrs.update({"format": "gahb-bench-store/1"}),
     "without cell digests"),
    (_fail_a_cell, "is not complete for its preset (1 cell(s) failed or pending; generalization: 1; e.g. "
                   "generalization/"),  # whatever its `complete` flag says; the way out named
    (_fail_a_cell, "without --experiment (failed cells are retried)"),
    (_edit_identity, "the identity was edited"),
])
def test_a_store_that_cannot_be_trusted_is_not_published(store_copy, tmp_path, capsys, damage, message):
    damage(store_copy)
    assert _publish(store_copy, tmp_path / "lb") == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "lb").exists()


def test_nothing_is_published_into_a_leaderboard_that_does_not_check(board, store_copy, capsys):
    folder, path = board
    (folder / "entries" / "broken.json").write_text("{}")
    before = tree_snapshot(folder)
    assert _publish(store_copy, folder, "--replace") == 2
    assert "has invalid entries, fix them first: broken.json" in capsys.readouterr().err
    assert tree_snapshot(folder) == before


def test_gahb_check_compares_what_no_digest_covers_with_the_battery(store_copy, capsys):
    assert main(["check", str(store_copy)]) == 0
    assert "intact" in capsys.readouterr().out
    _reverse_sigma(store_copy)
    assert main(["check", str(store_copy)]) == 1
    out = capsys.readouterr().out
    assert "DAMAGED: " in out and "coordinate 'sigma'" in out


def _identity(store, change):
    root = zarr.open_group(str(store), mode="r+")
    identity = json.loads(root.attrs["identity"])
    change(identity)
    root.attrs["identity"] = json.dumps(identity, sort_keys=True)


def test_gahb_check_tells_an_edited_identity_from_one_this_install_would_not_resume(store_copy, capsys):
    """Made by another plugin version (an upgrade since): not damaged, only not compared. An
    identity that does not read, or that no run makes: damaged."""
    _identity(store_copy, lambda i: i.update(arch_plugin_version="0.0.1"))
    assert main(["check", str(store_copy)]) == 0
    out = capsys.readouterr().out
    assert "(its coordinates were not compared with its battery's: " in out and "intact" in out
    _identity(store_copy, lambda i: i.update(acceleration=json.dumps({"precision": "fp8"})))
    assert main(["check", str(store_copy)]) == 1
    assert "DAMAGED: " in capsys.readouterr().out
    zarr.open_group(str(store_copy), mode="r+").attrs["identity"] = "{bad"
    assert main(["check", str(store_copy)]) == 1
    assert "its recorded identity is not JSON" in capsys.readouterr().out


def test_a_build_clears_what_a_killed_build_left_and_refuses_a_linked_lock(board, tmp_path, capsys):
    folder, _ = board
    (folder / ".site-abc123" / "entries").mkdir(parents=True)
    (folder / ".site-old-def456" / "site").mkdir(parents=True)
    assert main(["leaderboard", "build", str(folder)]) == 0
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".site")]
    (folder / ".lock").unlink()
    (folder / ".lock").symlink_to(tmp_path / "elsewhere")
    assert main(["leaderboard", "build", str(folder)]) == 2
    assert "cannot open its lock file .lock" in capsys.readouterr().err
    assert not (tmp_path / "elsewhere").exists()


def test_nothing_is_published_into_a_leaderboard_whose_figures_do_not_check(board, store_copy, capsys):
    folder, path = board
    entry = json.loads(path.read_text())
    (folder / "figures" / entry["id"] / entry["figures"][0]).unlink()
    before = tree_snapshot(folder)
    assert _publish(store_copy, folder, "--replace") == 2
    assert f"has invalid entries, fix them first: {path.name}: figures: 1 missing" in capsys.readouterr().err
    assert tree_snapshot(folder) == before
    assert main(["leaderboard", "build", str(folder)]) == 2


def test_publish_and_build_hold_the_leaderboard_lock_while_they_write(board, store_copy, monkeypatch):
    """Two writers of one leaderboard take turns: whoever writes the site holds ``.lock``, so a
    second process's flock on it would block (tried here without blocking)."""
    import fcntl

    from gahb_bench.leaderboard import publish, site

    folder, _ = board
    real, held = site.build_unlocked, []

    def build_checking_the_lock(leaderboard, known):
        with open(leaderboard / ".lock") as other:
            try:
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                held.append(True)
            else:
                fcntl.flock(other, fcntl.LOCK_UN)
                held.append(False)
        return real(leaderboard, known)

    monkeypatch.setattr(site, "build_unlocked", build_checking_the_lock)
    site.build(folder, publish.known_batteries())
    publish.publish(store_copy, folder, replace=True)
    assert held == [True, True]
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".site")]  # no scratch left


def test_a_damaged_store_and_a_missing_one_are_refused(store_copy, tmp_path, capsys):
    chunk = next(p for p in (store_copy / "generalization" / "psnr" / "c").rglob("*") if p.is_file())
    chunk.write_bytes(b"\x00garbage")
    assert _publish(store_copy, tmp_path / "lb") == 2
    assert "damaged cell(s)" in capsys.readouterr().err
    assert _publish(tmp_path / "nowhere.zarr", tmp_path / "lb") == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_rerun_that_rewrites_the_summaries_records_the_digest_of_what_it_wrote(store_copy, tmp_path, capsys,
                                                                                 monkeypatch):
    """A newer gahb-bench rewrites the summaries of a finished store when it reruns it; the digest
    it records must cover the new summaries, not the consolidated metadata of the last run (which
    made such a store unpublishable)."""
    from gahb_bench import store, summaries

    older = summaries.compute
    monkeypatch.setattr(summaries, "compute", lambda ds: {**older(ds), "newer": {"x": 1.0}})  # a newer summarize
    summaries.write(store_copy)  # the rerun: summaries, then the digest, then consolidation
    store.finalize(store_copy, {"finished": "now"})
    assert store.recorded_digest(store_copy) == store.scores_digest(store_copy)
    assert main(["publish", str(store_copy), "--leaderboard", str(tmp_path / "lb")]) == 0
