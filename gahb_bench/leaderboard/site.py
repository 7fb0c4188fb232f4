"""The leaderboard's static site: plain HTML, one stylesheet and a little JavaScript.

``build(LEADERBOARD)`` writes ``LEADERBOARD/site/``: ``index.html`` (one table per battery,
version and preset, where an earlier version with the same numbers for the preset joins the
current one's table (``Battery.numbers_since``), one row per entry, sortable by any column, each score's direction shown),
``entries/ID.html`` (an entry's scorecard, baselines, provenance and figures), ``compare.html``
(the architectures side by side along each axis of inductive bias, with the scores the theory
says that axis moves: :mod:`gahb_bench.biases`), ``scores.html`` (what each score means) and ``figures/ID/`` (copies, so that the folder is self-contained: it
works opened from disk and from any static host; nothing is fetched from elsewhere).

Every string that comes from an entry is escaped where it is rendered (an architecture named
``<script>…`` shows as text); the only links are to the site's own pages and figures, made from
entry ids that validation has checked to be plain names.
"""

from __future__ import annotations

import contextlib
import fcntl
import html
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

from gahb_bench.biases import AXES
from gahb_bench.errors import LeaderboardError
from gahb_bench.leaderboard.entry import Problem, check_all, table_version
from gahb_bench.scorecard import BY_KEY, SCORES, number, shown

from gahb_bench.contracts import version_order

if TYPE_CHECKING:
    from gahb_bench.contracts import Battery

#: The scores any axis of bias names (:data:`gahb_bench.biases.AXES`), in the axes' order.
_MOVED = [BY_KEY[k] for k in dict.fromkeys(k for axis in AXES for k in axis.scores)]

ARROWS = {"lower": "↓ lower is better", "higher": "↑ higher is better", "zero": "→0 closer to 0 is better",
          "none": "· descriptive"}

CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:72em;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}th,td{border:1px solid #ccc;padding:.3em .5em;text-align:right}
th{background:#f3f3f3;cursor:pointer;vertical-align:bottom}td:first-child,th:first-child{text-align:left}
th small{display:block;font-weight:normal;color:#666}img{max-width:100%;border:1px solid #ddd;margin:.5em 0}
code{background:#f6f6f6;padding:0 .2em}.na{color:#999}
"""

SORT_JS = """// Sort a table by the clicked column: numbers by value (n/a last), text alphabetically.
document.querySelectorAll("table.sortable th").forEach(function (th) {
  th.addEventListener("click", function () {
    var table = th.closest("table"), body = table.tBodies[0], column = th.cellIndex;
    var ascending = th.getAttribute("data-order") !== "ascending";
    table.querySelectorAll("th").forEach(function (other) { other.removeAttribute("data-order"); });
    th.setAttribute("data-order", ascending ? "ascending" : "descending");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[column].getAttribute("data-value"), y = b.cells[column].getAttribute("data-value");
      if (x === "" || y === "") { return (x === "") - (y === ""); }
      var nx = Number(x), ny = Number(y);
      var order = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : String(x).localeCompare(String(y));
      return ascending ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  });
});
"""


def dumps(entry: Mapping[str, Any]) -> str:
    """An entry as written to its file: indented, keys sorted."""
    return json.dumps(entry, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def e(text: Any) -> str:
    """HTML-escaped text (quotes included)."""
    return html.escape(str(text), quote=True)


def _page(title: str, body: str, root: str = "", standalone: bool = False) -> str:
    """A page of the site (``root``: the relative path to the site's top), or with ``standalone``
    a self-contained one (its stylesheet inline, no script)."""
    style = f"<style>{CSS}</style>" if standalone else f'<link rel="stylesheet" href="{root}style.css">'
    script = "" if standalone else f'<script src="{root}sort.js"></script>'
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"{style}</head><body>\n{body}\n{script}</body></html>\n")


def _number(value: Any) -> str:
    return "" if value is None else number(value)


def _score_cell(score: Mapping[str, Any] | None) -> str:
    if not score or score.get("value") is None:
        note = e(score.get("note", "")) if score else ""
        return f'<td data-value="" class="na" title="{note}">n/a</td>'
    shown = _number(score["value"])
    if score.get("low") is not None and score.get("high") is not None:
        shown += f' <small>[{_number(score["low"])}, {_number(score["high"])}]</small>'
    return f'<td data-value="{score["value"]!r}" title="{e(score.get("note", ""))}">{shown}</td>'


def _groups(entries: list[dict], known: Mapping[str, Battery]) -> dict[tuple, list[dict]]:
    """(battery, table version, preset) → its entries, sorted by architecture; an entry of an
    earlier version with the same numbers joins the installed version's table
    (:func:`gahb_bench.leaderboard.entry.table_version`)."""
    groups: dict[tuple, list[dict]] = {}
    for entry in sorted(entries, key=lambda x: (x["arch"], x["id"])):
        groups.setdefault((entry["battery"], table_version(entry, known), entry["preset"]), []).append(entry)
    return dict(sorted(groups.items(), key=lambda kv: (kv[0][0], version_order(kv[0][1]) or (), kv[0][1:])))


def params_text(entry: Mapping[str, Any]) -> str:
    """An entry's params and, after them, the speed-up flags that are on (plain text): two runs
    that differ only in their flags are two claims, and the reader must see which is which."""
    params = ", ".join(f"{k}={v}" for k, v in sorted(entry["arch_params"].items()))
    flags = entry.get("acceleration") or {}
    on = [f"precision={flags['precision']}"] if flags.get("precision", "float32") != "float32" else []
    on += [name.replace("_", "-") for name in ("channels_last", "compile") if flags.get(name)]
    return "; ".join(filter(None, [params, " ".join(f"--{flag}" for flag in on)]))


def _arch_cell(entry: dict, root: str = "") -> str:
    params = params_text(entry)
    return (f'<td data-value="{e(entry["arch"])}"><a href="{root}entries/{entry["id"]}.html">'
            f'{e(entry["arch"])}</a> <small>{e(params)}</small></td>')


def _earlier(version: str, rows: list[dict]) -> list[str]:
    """The other versions of a table's entries (earlier ones with the same numbers), in order."""
    return sorted({r["battery_version"] for r in rows} - {version}, key=lambda v: (version_order(v) or (), v))


def _joined(version: str, rows: list[dict]) -> str:
    """The note (plain text) naming the earlier versions whose entries joined a table; '' when none."""
    earlier = _earlier(version, rows)
    return f"with entries of {', '.join(earlier)}: the same numbers for this preset" if earlier else ""


def _group_title(battery: str, version: str, preset: str, rows: list[dict]) -> str:
    """A table's heading (HTML): battery, version and preset, and the earlier versions whose
    entries joined it."""
    joined = _joined(version, rows)
    note = f" <small>({e(joined)})</small>" if joined else ""
    return f"battery {e(battery)} {e(version)}, preset {e(preset)}{note}"


def index_page(entries: list[dict], known: Mapping[str, Battery]) -> str:
    groups = _groups(entries, known)
    parts = ["<h1>gahb-bench leaderboard</h1>",
             '<p>Inductive biases of image denoisers, scored by the standard battery. Click a column to sort. '
             'What each score means: <a href="scores.html">scores</a>. The architectures side by side along '
             'each axis of inductive bias: <a href="compare.html">comparison</a>.</p>']
    if not groups:
        parts.append("<p>No entries yet: <code>gahb publish STORE</code> adds one.</p>")
    for (battery, version, preset), rows in groups.items():
        head = "".join(_score_head(s) for s in SCORES)
        body = []
        for entry in rows:
            cells = "".join(_score_cell(entry["scores"].get(s.key)) for s in SCORES)
            body.append(f'<tr>{_arch_cell(entry)}'
                        f'<td data-value="{entry["n_parameters"]}">{entry["n_parameters"]}</td>{cells}</tr>')
        parts.append(f"<h2>{_group_title(battery, version, preset, rows)}</h2>"
                     f'<table class="sortable"><thead><tr><th>architecture</th><th>parameters</th>{head}</tr></thead>'
                     f"<tbody>{''.join(body)}</tbody></table>")
    return _page("gahb-bench leaderboard", "\n".join(parts))


def _score_head(score) -> str:
    return (f'<th title="{e(score.formula)}">{e(score.title)}<small>{e(score.units)} {e(ARROWS[score.direction])}'
            f"</small></th>")


def compare_page(entries: list[dict], known: Mapping[str, Battery]) -> str:
    """Per battery, version and preset: the architectures' declared biases and the scores any
    axis names, side by side; then one table per axis, rows ordered by the declared value, with
    that axis's question, prediction and scores."""
    parts = ['<p><a href="index.html">← leaderboard</a></p><h1>Architectures compared along each axis of bias</h1>',
             "<p>Each architecture declares its inductive biases (plugin authors: the <code>biases</code> of "
             "<code>gahb_bench.Architecture</code>); the scores below are the ones the theory says each axis "
             "should move. A score moved the predicted way on one preset is a hint, not a proof: compare within one "
             "table (one battery version and preset), and mind the ranges.</p>"]
    if not entries:
        parts.append("<p>No entries yet.</p>")
    for (battery, version, preset), rows in _groups(entries, known).items():
        parts.append(f"<h2>{_group_title(battery, version, preset, rows)}</h2>")
        head = "".join(f"<th>{e(a.title)}</th>" for a in AXES) + "".join(_score_head(s) for s in _MOVED)
        body = "".join(
            f"<tr>{_arch_cell(entry)}"
            + "".join(_bias_cell(entry, a.key) for a in AXES)
            + "".join(_score_cell(entry["scores"].get(s.key)) for s in _MOVED) + "</tr>" for entry in rows)
        parts.append(f'<table class="sortable"><thead><tr><th>architecture</th>{head}</tr></thead>'
                     f"<tbody>{body}</tbody></table>")
        for axis in AXES:
            ordered = sorted(rows, key=lambda x: (x["inductive_biases"].get(axis.key, "~"), x["arch"]))
            axis_head = "".join(_score_head(BY_KEY[k]) for k in axis.scores)
            axis_body = "".join(f"<tr>{_arch_cell(entry)}{_bias_cell(entry, axis.key)}"
                                + "".join(_score_cell(entry["scores"].get(k)) for k in axis.scores) + "</tr>"
                                for entry in ordered)
            parts.append(f"<h3>{e(axis.title)}</h3><p>{e(axis.question)} Predicted: {e(axis.prediction)}.</p>"
                         f'<table class="sortable"><thead><tr><th>architecture</th><th>{e(axis.title)}</th>'
                         f"{axis_head}</tr></thead><tbody>{axis_body}</tbody></table>")
    return _page("gahb-bench: architectures compared", "\n".join(parts))


def compare_markdown(entries: list[dict], known: Mapping[str, Battery]) -> str:
    """The comparison page as Markdown (``gahb leaderboard compare``): per battery version and
    preset, the declared biases, then the scores any axis names (value, and [low, high] where the
    entry has a range); ``n/a`` where a score could not be computed."""
    clean = lambda text: str(text).replace("|", "/").replace("\n", " ")  # noqa: E731 (a table cell)

    def value(score: Mapping[str, Any] | None) -> str:
        score = score or {}
        return shown(score.get("value"), score.get("low"), score.get("high"))

    out = []
    for (battery, version, preset), rows in _groups(entries, known).items():
        joined = _joined(version, rows)
        note = f" ({clean(joined)})" if joined else ""
        out += [f"### battery {clean(battery)} {clean(version)}, preset {clean(preset)}{note}", "",
                "| architecture | parameters | " + " | ".join(a.title for a in AXES) + " |",
                "|---|---|" + "---|" * len(AXES)]
        out += [f"| {clean(e['arch'])} | {e['n_parameters']:,} | "
                + " | ".join(clean(e["inductive_biases"].get(a.key, "not declared")) for a in AXES) + " |" for e in rows]
        out += ["", "| architecture | " + " | ".join(f"{s.title} ({s.direction})" for s in _MOVED) + " |",
                "|---|" + "---|" * len(_MOVED)]
        out += [f"| {clean(e['arch'])} | " + " | ".join(value(e["scores"].get(s.key)) for s in _MOVED) + " |"
                for e in rows]
        out.append("")
    return "\n".join(out) if out else "No entries."


def _bias_cell(entry: dict, axis: str) -> str:
    text = entry["inductive_biases"].get(axis)
    if text is None:
        return '<td data-value="" class="na">not declared</td>'
    return f'<td data-value="{e(text)}">{e(text)}</td>'


def entry_page(entry: dict, figure_src: Callable[[str], str] | None = None, standalone: bool = False) -> str:
    """An entry's page: scorecard, baselines, provenance, figures (``figure_src(name)`` gives an
    image's address: the site's copy by default)."""
    figure_src = figure_src or (lambda name: f"../figures/{entry['id']}/{name}")
    rows = "".join(f'<tr><td>{e(s.title)}</td>{_score_cell(entry["scores"].get(s.key))}<td>{e(s.units)}</td>'
                   f'<td>{e(ARROWS[s.direction])}</td><td>{e(entry["scores"].get(s.key, {}).get("note", ""))}</td></tr>'
                   for s in SCORES)
    base = ""
    if entry["baselines"]:
        keys = [s for s in SCORES if any(s.key in v for v in entry["baselines"].values())]
        base = ("<h2>Baselines</h2><table><tr><th>baseline</th>" + "".join(f"<th>{e(s.title)}</th>" for s in keys)
                + "</tr>" + "".join(f"<tr><td>{e(name)}</td>" + "".join(_score_cell(v.get(s.key)) for s in keys)
                                    + "</tr>" for name, v in sorted(entry["baselines"].items())) + "</table>")
    prov = "".join(f"<tr><td>{e(k)}</td><td>{e(v)}</td></tr>" for k, v in sorted(entry["provenance"].items()))
    figures = "".join(f'<figure><img src="{e(figure_src(name))}" alt="{e(name)}">'
                      f"<figcaption>{e(name)}</figcaption></figure>" for name in entry["figures"])
    params = params_text(entry)
    back = "" if standalone else '<p><a href="../index.html">← leaderboard</a></p>'
    body = (f'{back}<h1>{e(entry["arch"])}</h1>'
            f"<p>{e(params)}; {entry['n_parameters']} parameters; plugin {e(entry['arch_plugin'])} "
            f"{e(entry['arch_plugin_version'])} ({e(entry['arch_distribution'])}); battery {e(entry['battery'])} "
            f"{e(entry['battery_version'])}, preset {e(entry['preset'])}; published {e(entry['published'])}</p>"
            f"{_biases_table(entry)}<h2>Scorecard</h2><table><tr><th>score</th><th>value [95% interval or range: see note]</th><th>units</th><th>direction</th>"
            f"<th>note</th></tr>{rows}</table>{base}<h2>Provenance</h2><table>{prov}"
            f"<tr><td>scores digest</td><td><code>{e(entry['store_digest'])}</code></td></tr>"
            f"<tr><td>entry digest</td><td><code>{e(entry['entry_digest'])}</code></td></tr></table>"
            f"<h2>Figures</h2>{figures}")
    return _page(f"{entry['arch']}: gahb-bench", body, root="../", standalone=standalone)


def _biases_table(entry: dict) -> str:
    declared = entry["inductive_biases"]
    if not declared:
        return "<p>The architecture declares no inductive biases.</p>"
    rows = "".join(f"<tr><td>{e(a.title)}</td>{_bias_cell(entry, a.key)}</tr>" for a in AXES if a.key in declared)
    return f"<h2>Inductive biases (declared)</h2><table>{rows}</table>"


def scores_page() -> str:
    rows = "".join(f"<tr><td>{e(s.title)}</td><td><code>{e(s.key)}</code></td><td>{e(s.formula)}</td>"
                   f"<td>{e(s.units)}</td><td>{e(ARROWS[s.direction])}</td><td>{e(s.experiment)}</td></tr>"
                   for s in SCORES)
    body = ('<p><a href="index.html">← leaderboard</a></p><h1>What each score means</h1>'
            "<p>The bracket after a score is what its note says: the range (min–max) of its replicates "
            "(subsets S1, S2 and seeds) when there are fewer than five, which two runs bracket only half the "
            "time; a 95% percentile bootstrap interval (2,000 resamples) over the replicates and the test "
            "images or samples where the metric keeps each one's value; the exact binomial interval of a "
            "copy fraction no resample can move; the interval a C^α slope was fitted with; or, for a score "
            "averaged over classes, the range over them. Entries published before 2026-12-03 show ranges over "
            "the replicates only.</p>"
            f"<table><tr><th>score</th><th>key</th><th>definition</th><th>units</th><th>direction</th>"
            f"<th>experiment</th></tr>{rows}</table>")
    return _page("gahb-bench scores", body)


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def figure_file(leaderboard: Path, entry_id: str, name: str) -> Path | None:
    """``leaderboard/figures/ID/NAME`` when it is a real PNG file (not a link, nor inside a
    linked folder: a site never copies what a link points at); None otherwise."""
    folder, path = leaderboard / "figures" / entry_id, leaderboard / "figures" / entry_id / name
    if folder.is_symlink() or (leaderboard / "figures").is_symlink() or path.is_symlink() or not path.is_file():
        return None
    with open(path, "rb") as handle:
        return path if handle.read(len(PNG_SIGNATURE)) == PNG_SIGNATURE else None


def check(leaderboard: Path, known: Mapping[str, Battery]) -> tuple[list[dict], list]:
    """(the valid entries, every problem) of a leaderboard folder: each entry file
    (:func:`gahb_bench.leaderboard.entry.check_all`), then each valid entry's figures (a real
    PNG file in ``figures/ID/`` for every name it lists)."""
    entries, problems = check_all(leaderboard / "entries", known)
    for entry in entries:
        missing = [n for n in entry["figures"] if figure_file(leaderboard, entry["id"], n) is None]
        if missing:
            problems.append(Problem(f"{entry['id']}.json", "figures", f"{len(missing)} missing from "
                                    f"figures/{entry['id']}/ (or not a PNG file, or a link), e.g. {missing[0]}"))
    return entries, problems


def build(leaderboard: Path, known: Mapping[str, Battery]) -> Path:
    """Write ``leaderboard/site/`` from ``leaderboard/entries/`` (refused, naming every problem,
    when an entry or one of its figures is invalid: :func:`check`); returns the site folder.
    Builds and publishes into one leaderboard take turns (:func:`locked`)."""
    with locked(leaderboard):
        return build_unlocked(leaderboard, known)


@contextlib.contextmanager
def locked(leaderboard: Path) -> Iterator[None]:
    """Hold ``leaderboard/.lock`` (an advisory ``flock``) while writing the leaderboard: a second
    ``gahb publish`` or ``gahb leaderboard build`` on the same folder waits for the first one,
    instead of racing it for the site's scratch folder or for a claim. (``flock`` is reliable on
    a local disk; on a network file system, publish from one machine at a time.)"""
    leaderboard.mkdir(parents=True, exist_ok=True)
    try:  # O_NOFOLLOW: a link named .lock is refused, never followed to create what it points at
        handle = os.fdopen(os.open(leaderboard / ".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644), "r+")
    except OSError as exc:
        raise LeaderboardError(f"{leaderboard}: cannot open its lock file .lock ({exc.strerror})") from exc
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_unlocked(leaderboard: Path, known: Mapping[str, Battery]) -> Path:
    """:func:`build`, for a caller that holds :func:`locked` already. The site is written to a
    scratch folder of its own and swapped in by two renames: a reader sees the old site or the
    new one (or, between the renames, none), never a mix of the two."""
    entries, problems = check(leaderboard, known)
    if problems:
        raise LeaderboardError("invalid entries: " + "; ".join(str(p) for p in problems))
    out = leaderboard / "site"
    # Scratch folders of a build that was killed (under the lock, no other build is running).
    for stale in [*leaderboard.glob(".site-*"), leaderboard / ".site.tmp"]:
        shutil.rmtree(stale, ignore_errors=True)
    scratch = Path(tempfile.mkdtemp(prefix=".site-", dir=leaderboard))
    old = None
    try:
        (scratch / "entries").mkdir()
        (scratch / "style.css").write_text(CSS)
        (scratch / "sort.js").write_text(SORT_JS)
        (scratch / "index.html").write_text(index_page(entries, known))
        (scratch / "scores.html").write_text(scores_page())
        (scratch / "compare.html").write_text(compare_page(entries, known))
        for entry in entries:
            (scratch / "entries" / f"{entry['id']}.html").write_text(entry_page(entry))
            (scratch / "figures" / entry["id"]).mkdir(parents=True)
            for name in entry["figures"]:
                shutil.copyfile(figure_file(leaderboard, entry["id"], name), scratch / "figures" / entry["id"] / name,
                                follow_symlinks=False)
        scratch.chmod(0o755)  # mkdtemp makes it private; a site is for reading
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=".site-old-", dir=leaderboard))
            out.rename(old / "site")
        scratch.rename(out)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        if old is not None:
            if not out.exists():  # put the previous site back
                (old / "site").rename(out)
            shutil.rmtree(old, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return out
