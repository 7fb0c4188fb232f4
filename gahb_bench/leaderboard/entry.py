"""Leaderboard entries: one JSON file per published store, its schema, and its validation.

An entry (schema :data:`SCHEMA`) holds what a reader needs to rank and trust a result: the
architecture and its params and declared inductive biases (:mod:`gahb_bench.biases`), the battery, version and preset, the scorecard of
:mod:`gahb_bench.scorecard` (and the baselines'), the provenance of the run, the store's
``scores_digest``, the figures' file names, each done model cell's mean train and test PSNR
(what ``gahb verify`` recomputes), and ``entry_digest``: the SHA-256 of the canonical
JSON of everything else. A score edited by hand no longer matches ``entry_digest``; a store
whose numbers were edited no longer matches its own ``scores_digest`` (checked by ``gahb
publish`` before the entry is written).

Entries are data: nothing here imports or runs code named in an entry, and files over
:data:`MAX_BYTES` are refused before they are parsed.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from gahb_bench import biases
from gahb_bench.errors import LeaderboardError
from gahb_bench.scorecard import BY_KEY

if TYPE_CHECKING:
    from gahb_bench.contracts import Battery

#: 2 added ``inductive_biases``.
SCHEMA = 2
#: An entry file larger than this is refused unread (a scorecard is a few kB).
MAX_BYTES = 1_000_000
#: Integers in an entry are below this in size (a score or a count, never a bignum).
MAX_INT = 2**63
#: The speed-up flags an entry may record, at their defaults (``gahb_bench.acceleration``).
FLAG_DEFAULTS = {"precision": "float32", "channels_last": False, "compile": False}
#: Names used in file names and URLs: what an entry's id may contain.
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")
#: A figure of an entry: a plain PNG file name.
FIGURE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\.png")

#: What an entry records of each done model cell (what ``gahb verify`` recomputes).
CELL_FIELDS = ("psnr_train", "psnr_test")
_SCORE_FIELDS = {"value": (float, int, type(None)), "low": (float, int, type(None)),
                 "high": (float, int, type(None)), "note": (str,)}
#: Field → accepted types, for the top level of an entry.
FIELDS: dict[str, tuple] = {
    "schema": (int,), "id": (str,), "arch": (str,), "arch_params": (dict,), "arch_plugin": (str,),
    "arch_plugin_version": (str,), "arch_distribution": (str,), "battery": (str,), "battery_version": (str,),
    "preset": (str,), "acceleration": (dict,), "n_parameters": (int,), "inductive_biases": (dict,), "scores": (dict,), "baselines": (dict,), "provenance": (dict,),
    "store_digest": (str,), "figures": (list,), "published": (str,), "cells": (dict,), "entry_digest": (str,),
}


class EntryError(LeaderboardError):
    """An entry that fails validation; the message names the file and the field."""


@dataclass
class Problem:
    file: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: {self.message}"


def entry_id(identity: Mapping[str, Any]) -> str:
    """``ARCH-BATTERY-VERSION-PRESET-HASH16`` (the hash of the params and speed-up flags): one
    per architecture, params, flags, battery version and preset (the duplicate key), and safe as
    a file name and a URL path."""
    params = json.dumps([canonical_params(identity.get("arch_params", {})), _acceleration(identity)], sort_keys=True)
    digest = hashlib.sha256(params.encode()).hexdigest()[:16]
    parts = [identity["arch"], identity["battery"], identity["battery_version"], identity["preset"], digest]
    return _SAFE.sub("_", "-".join(str(p) for p in parts))


def canonical_digest(entry: Mapping[str, Any]) -> str:
    """SHA-256 of the entry's canonical JSON (sorted keys, no spaces), ``entry_digest`` left out."""
    body = {k: v for k, v in entry.items() if k != "entry_digest"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def seal(entry: dict) -> dict:
    """``entry`` with its ``entry_digest``."""
    return {**entry, "entry_digest": canonical_digest(entry)}


def _acceleration(identity: Mapping[str, Any]) -> dict:
    """The speed-up flags of a run in their canonical form: {} when every flag is off, else
    every flag (:meth:`gahb_bench.acceleration.Acceleration.key`); in a store's identity they
    are JSON text, in an entry an object. Flags written out at their defaults are the same run."""
    flags = identity.get("acceleration") or {}
    flags = json.loads(flags) if isinstance(flags, str) else dict(flags) if isinstance(flags, Mapping) else {}
    merged = {**FLAG_DEFAULTS, **flags}
    return {} if merged == FLAG_DEFAULTS else merged


def canonical_params(params: Any) -> Any:
    """Architecture params as one claim: a float with an integral value is the integer
    (``width: 64.0`` and ``width: 64`` build the same network), in nested values too."""
    if isinstance(params, Mapping):
        return {k: canonical_params(v) for k, v in params.items()}
    if isinstance(params, list):
        return [canonical_params(v) for v in params]
    if isinstance(params, float) and params.is_integer():
        return int(params)
    return params


def table_version(entry: Mapping[str, Any], known: Mapping[str, "Battery"]) -> str:
    """The battery version whose table the entry joins: the installed one when the entry's
    version has the same numbers for its preset (:meth:`Battery.same_numbers`), else its own."""
    battery = known.get(entry.get("battery"))
    version = str(entry.get("battery_version"))
    return battery.table_version(str(entry.get("preset")), version) if battery is not None else version


def duplicate_key(entry: Mapping[str, Any], known: Mapping[str, "Battery"]) -> tuple:
    """Entries with the same key are one claim: the same architecture, params, speed-up flags,
    battery, preset and numbers (the same version, or versions with the same numbers)."""
    return (entry.get("arch"), json.dumps(canonical_params(entry.get("arch_params")), sort_keys=True),
            json.dumps(_acceleration(entry), sort_keys=True), entry.get("battery"), table_version(entry, known),
            entry.get("preset"))


def load(path: Path) -> dict:
    """Read one entry file; :class:`EntryError` naming the file. Only a regular file (not a
    link, a device or a pipe) is opened, at most :data:`MAX_BYTES` of it are read, and JSON
    that is not plain data (NaN, Infinity, nesting too deep, numbers too long) is refused."""
    try:
        info = path.lstat()
    except OSError as exc:
        raise EntryError(f"{path}: file: cannot be read ({exc.strerror})") from exc
    if not stat.S_ISREG(info.st_mode):
        raise EntryError(f"{path}: file: not a regular file (a link, a folder or a device)")
    with open(path, "rb") as handle:
        blob = handle.read(MAX_BYTES + 1)
    if len(blob) > MAX_BYTES:
        raise EntryError(f"{path}: file: over the limit of {MAX_BYTES} bytes")
    try:
        data = json.loads(blob.decode("utf-8"), parse_constant=_no_constant, parse_float=_finite_float,
                          parse_int=_bounded_int)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise EntryError(f"{path}: file: not valid JSON ({str(exc)[:200]})") from exc
    if not isinstance(data, dict):
        raise EntryError(f"{path}: file: an entry is a JSON object, got {type(data).__name__}")
    return data


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses to inf
        raise ValueError(f"{text[:40]} is out of the range of a double")
    return value


def _bounded_int(text: str) -> int:
    value = int(text)
    if abs(value) >= MAX_INT:
        raise ValueError(f"the integer {text[:40]}{'…' if len(text) > 40 else ''} is out of range (|n| < 2**63)")
    return value


def validate(entry: Mapping[str, Any], file: str, known: Mapping[str, "Battery"]) -> list[Problem]:
    """Every problem of one entry: missing or mistyped fields, unknown scores, an unknown battery
    or battery version (``known``: the batteries this install has, by name; each reads its
    ``versions``), a digest that does not match its content."""
    problems = []
    for field, types in FIELDS.items():
        if field not in entry:
            problems.append(Problem(file, field, "missing"))
        elif not isinstance(entry[field], types) or isinstance(entry[field], bool):
            problems.append(Problem(file, field, f"expected {' or '.join(t.__name__ for t in types)}, "
                                                 f"got {type(entry[field]).__name__}"))
    for field in sorted(set(entry) - set(FIELDS)):
        problems.append(Problem(file, field, "not a field of the entry schema"))
    if problems:
        return problems
    if entry["schema"] != SCHEMA:
        problems.append(Problem(file, "schema", f"schema {entry['schema']} is not this install's ({SCHEMA})"))
    if entry["battery"] not in known:
        problems.append(Problem(file, "battery", f"unknown battery {entry['battery']!r}"))
    elif entry["battery_version"] not in known[entry["battery"]].versions:
        problems.append(Problem(file, "battery_version", f"version {entry['battery_version']!r} of battery "
                                f"{entry['battery']!r} is unknown here (known: {', '.join(known[entry['battery']].versions)})"))
    elif entry["preset"] not in known[entry["battery"]].presets:
        problems.append(Problem(file, "preset", f"battery {entry['battery']!r} has no preset {entry['preset']!r} "
                                f"(presets: {', '.join(known[entry['battery']].presets)})"))
    problems += _flags(entry["acceleration"], file)
    if entry["n_parameters"] <= 0:
        problems.append(Problem(file, "n_parameters", f"a trained network has parameters, got {entry['n_parameters']}"))
    if not entry["cells"]:
        problems.append(Problem(file, "cells", "empty: an entry records the PSNR of each done model cell "
                                               "(what gahb verify recomputes)"))
    problems += [Problem(file, f"inductive_biases.{axis}", what)
                 for axis, what in biases.problems(entry["inductive_biases"])]
    problems += _scores(entry["scores"], "scores", file)
    for name, scores in entry["baselines"].items():
        problems += _scores(scores, f"baselines.{name}", file) if isinstance(scores, dict) else \
            [Problem(file, f"baselines.{name}", "expected an object of scores")]
    for label, value in entry["cells"].items():
        if (not isinstance(value, dict) or set(value) != set(CELL_FIELDS)
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value.values())):
            problems.append(Problem(file, f"cells.{label}", f"expected numbers {', '.join(CELL_FIELDS)}"))
    if not re.fullmatch(r"[0-9a-f]{64}", entry["store_digest"]):
        problems.append(Problem(file, "store_digest", "not a SHA-256 hex digest"))
    if entry["id"] != entry_id(entry):
        problems.append(Problem(file, "id", f"{entry['id']!r} does not match the entry's architecture, params, "
                                            f"battery and preset ({entry_id(entry)!r})"))
    for i, name in enumerate(entry["figures"]):
        if not isinstance(name, str) or not FIGURE_NAME.fullmatch(name):
            problems.append(Problem(file, f"figures[{i}]", f"not a plain PNG file name: {name!r}"))
    if not problems and entry["entry_digest"] != canonical_digest(entry):
        problems.append(Problem(file, "entry_digest", "does not match the entry's content (was a score edited?)"))
    return problems


def _flags(flags: Mapping[str, Any], file: str) -> list[Problem]:
    """Problems of an entry's ``acceleration``: only the known flags, each of its type."""
    from gahb_bench.acceleration import PRECISIONS

    problems = [Problem(file, f"acceleration.{k}", f"not a speed-up flag (flags: {', '.join(FLAG_DEFAULTS)})")
                for k in sorted(set(flags) - set(FLAG_DEFAULTS))]
    if "precision" in flags and flags["precision"] not in PRECISIONS:
        problems.append(Problem(file, "acceleration.precision", f"expected one of {', '.join(PRECISIONS)}, "
                                                                f"got {flags['precision']!r}"))
    problems += [Problem(file, f"acceleration.{k}", f"expected true or false, got {flags[k]!r}")
                 for k in ("channels_last", "compile") if k in flags and not isinstance(flags[k], bool)]
    return problems


def _scores(scores: Mapping[str, Any], where: str, file: str) -> list[Problem]:
    problems = []
    for key, value in scores.items():
        if key not in BY_KEY:
            problems.append(Problem(file, f"{where}.{key}", "not a score this install defines"))
            continue
        if not isinstance(value, dict) or set(value) != set(_SCORE_FIELDS):
            problems.append(Problem(file, f"{where}.{key}", f"expected an object with {', '.join(_SCORE_FIELDS)}"))
            continue
        for field, types in _SCORE_FIELDS.items():
            if not isinstance(value[field], types) or isinstance(value[field], bool):
                wanted = "text" if field == "note" else "a number or null"
                problems.append(Problem(file, f"{where}.{key}.{field}", f"expected {wanted}, got "
                                                                        f"{type(value[field]).__name__}"))
    return problems


def check_all(folder: Path, known: Mapping[str, "Battery"]) -> tuple[list[dict], list[Problem]]:
    """(the valid entries, every problem) of ``folder/*.json``; duplicates are problems of each
    file involved."""
    entries, problems, seen = [], [], {}
    for path in sorted(folder.glob("*.json")):
        try:
            entry = load(path)
        except EntryError as exc:
            problems.append(Problem(path.name, "file", str(exc).split(": ", 2)[-1]))
            continue
        found = validate(entry, path.name, known)
        if found:
            problems += found
            continue
        if path.stem != entry["id"]:
            problems.append(Problem(path.name, "id", f"the file of entry {entry['id']!r} must be named "
                                                     f"{entry['id']}.json (a copy or a duplicate?)"))
            continue
        key = duplicate_key(entry, known)
        if key in seen:
            problems.append(Problem(path.name, "id", f"duplicates {seen[key]} (same architecture, params, "
                                                     "preset and battery version, or a version with the same numbers)"))
            continue
        seen[key] = path.name
        entries.append(entry)
    return entries, problems
