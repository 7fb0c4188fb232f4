"""The static site: escaped text, sortable tables, self-contained pages."""

import json

from gahb_bench.cli import main
from helpers import add_hostile_entry


def test_entry_strings_render_as_text_and_links_stay_inside_the_site(board):
    folder, path = board
    hostile = add_hostile_entry(folder, path)
    assert main(["leaderboard", "build", str(folder)]) == 0
    pages = [folder / "site" / "index.html", folder / "site" / "entries" / f"{hostile}.html"]
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
