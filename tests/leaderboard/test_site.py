"""The static site: escaped text, sortable tables, self-contained pages."""

import json

from gahb_bench.cli import main
from helpers import add_hostile_entry


def test_entry_strings_render_as_text_and_links_stay_inside_the_site(board):
    folder, path = board
    hostile = add_hostile_entry(folder, path)
    assert main(["leaderboard", "build", str(folder)]) == 0
    pages = [folder / "site" / "index.html", folder / "site" / "entries" / f"{hostile}.html",
             folder / "site" / "compare.html"]
    for page in pages:
        text = page.read_text()
        assert "&lt;script&gt;window.__xss = 1&lt;/script&gt;" in text
        assert "<script>window" not in text and "<script>alert" not in text and "<img src=x" not in text
        assert 'href="javascript' not in text and "src=\"javascript" not in text
        assert text.count("<script") == 1  # the site's own sort.js
    assert "/" not in hostile and "<" not in hostile


def test_the_index_marks_directions_and_sort_values(board):
    folder, path = board
    entry = json.loads(path.read_text())
    index = (folder / "site" / "index.html").read_text()
    assert 'class="sortable"' in index and "↓ lower is better" in index and "↑ higher is better" in index
    value = entry["scores"]["excess_gap_db"]["value"]
    assert f'data-value="{value!r}"' in index
    assert (folder / "site" / "sort.js").read_text().startswith("// Sort a table")
    assert "http://" not in index and "https://" not in index  # nothing fetched from elsewhere


def test_the_comparison_page_sets_declared_biases_beside_the_scores_each_axis_moves(board):
    """One side-by-side table per battery version and preset, then one table per axis with the
    axis's scores; an architecture that declares nothing shows "not declared", a declared bias
    shows as text."""
    from gahb_bench.biases import AXES
    from gahb_bench.leaderboard.entry import seal

    folder, path = board
    entry = json.loads(path.read_text())
    assert entry["inductive_biases"] == {}  # the template plugin declares none
    twin = {**entry, "arch_params": {"depth": 5, "width": 4}, "inductive_biases": {"locality": "local & small"}}
    from gahb_bench.leaderboard.entry import entry_id
    twin["id"] = entry_id(twin)
    (folder / "entries" / f"{twin['id']}.json").write_text(json.dumps(seal(twin)))
    (folder / "figures" / twin["id"]).mkdir()
    for name in twin["figures"]:
        (folder / "figures" / twin["id"] / name).write_bytes((folder / "figures" / path.stem / name).read_bytes())
    assert main(["leaderboard", "build", str(folder)]) == 0
    page = (folder / "site" / "compare.html").read_text()
    assert page.count('<table class="sortable">') == 1 + len(AXES)
    assert "local &amp; small" in page and "not declared" in page
    for axis in AXES:
        assert axis.prediction in page or axis.prediction.replace("'", "&#x27;") in page
    locality = page.split("<h3>Locality</h3>")[1].split("</table>")[0]
    assert locality.index("local &amp; small") < locality.index("not declared")  # rows ordered by the declared value
    assert 'href="compare.html"' in (folder / "site" / "index.html").read_text()


def test_compare_prints_the_comparison_as_markdown_and_refuses_an_invalid_leaderboard(board, capsys):
    from gahb_bench.biases import AXES

    folder, path = board
    assert main(["leaderboard", "compare", str(folder)]) == 0
    out = capsys.readouterr().out
    entry = json.loads(path.read_text())
    assert "### battery board 2, preset tiny" in out
    assert out.count("| tiny-cnn |") == 2  # one row in the biases table, one in the scores table
    assert "| " + " | ".join(["not declared"] * len(AXES)) + " |" in out
    assert f"{entry['scores']['n_star']['value'] if entry['scores']['n_star']['value'] is not None else 'n/a'}" in out
    path.write_text(path.read_text().replace('"arch": "tiny-cnn"', '"arch": "edited"'))
    assert main(["leaderboard", "compare", str(folder)]) == 2  # refused, as publish refuses: bad input
    assert "invalid entries" in capsys.readouterr().err


def test_speed_up_flags_are_shown_beside_the_params(board):
    """Two entries that differ only in their flags are two claims; the table and the entry page
    say which flags each ran with."""
    from gahb_bench.leaderboard.publish import known_batteries
    from gahb_bench.leaderboard.site import entry_page, index_page, params_text

    _, path = board
    entry = json.loads(path.read_text())
    assert params_text(entry) == ", ".join(f"{k}={v}" for k, v in sorted(entry["arch_params"].items()))
    flagged = {**entry, "acceleration": {"precision": "bf16", "channels_last": True, "compile": False}}
    assert params_text(flagged).endswith("; --precision=bf16 --channels-last")
    assert "--precision=bf16 --channels-last" in index_page([flagged], known_batteries())
    assert "--precision=bf16 --channels-last" in entry_page(flagged)
