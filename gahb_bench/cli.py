"""``gahb``: argument parsing only; the work is done by the modules it calls.

Exit status: 0 success; 1 some cells failed (the store keeps what succeeded); 2 bad input
(a one-line message, nothing written).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from gahb_bench.errors import GahbError, ParamError


def parse_param(text: str) -> tuple[str, Any]:
    """``key=value`` → (key, value); the value is read as JSON when it parses (numbers,
    true/false, null, quoted strings), else kept as a plain string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ParamError(f"--param expects key=value, got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key, value


def _cmd_run(args: argparse.Namespace) -> int:
    from gahb_bench import report
    from gahb_bench.registry import get_registry
    from gahb_bench.runner import RunSpec, resolve_params
    from gahb_bench.sweep import default_paths, run

    registry = get_registry()
    arch = registry.architecture(args.arch)
    given = dict(parse_param(p) for p in args.param)
    params = resolve_params(arch.params, given, f"architecture {args.arch!r}")
    store_path = Path(args.store) if args.store else Path(args.out) / f"{args.arch}-{args.battery}-{args.preset}.zarr"
    checkpoints, _ = default_paths(store_path)
    spec = RunSpec(arch=args.arch, arch_params=params, battery=args.battery, preset=args.preset,
                   store=str(store_path), checkpoints=str(checkpoints), device=args.device, quiet=args.quiet)
    summary = run(spec, executor=args.executor, address=args.scheduler, n_workers=args.workers)
    print(report.summary_table(summary.store))
    print(f"store: {summary.store}")
    for fig in summary.figures:
        print(f"figure: {fig}")
    print(f"cells: {summary.trained} trained, {summary.loaded} from checkpoints, "
          f"{summary.already_done} already done, {len(summary.failed)} failed; {summary.seconds:.1f} s")
    for outcome in summary.failed:
        print(f"failed: {outcome.cell.label}: {outcome.message}", file=sys.stderr)
    return 1 if summary.failed else 0


def _cmd_plugins(args: argparse.Namespace) -> int:
    from gahb_bench.registry import get_registry

    plugins = [{"name": p.name, "distribution": p.distribution, "version": p.version, "hooks": list(p.hooks)}
               for p in get_registry().plugins.values()]
    if args.json:
        print(json.dumps(plugins, indent=2))
        return 0
    width = max(len(p["name"]) for p in plugins)
    for p in plugins:
        print(f"{p['name']:<{width}}  {p['distribution']} {p['version']}  {', '.join(p['hooks'])}")
    return 0


def _describe(kind: str, entry) -> dict[str, Any]:
    record = entry.record
    out: dict[str, Any] = {"name": record.name, "plugin": entry.plugin.name,
                           "distribution": entry.plugin.distribution, "description": record.description}
    if kind in ("architectures", "image-classes"):
        out["params"] = dict(record.params)
    if kind == "metrics":
        out["requires"] = list(record.requires)
        out["variables"] = list(record.variables)
    if kind == "batteries":
        out["version"] = record.version
        out["presets"] = {name: p.description for name, p in record.presets.items()}
    return out


def _cmd_list(args: argparse.Namespace) -> int:
    from gahb_bench.registry import get_registry

    registry = get_registry()
    items = [_describe(args.kind, e) for e in registry.items(args.kind)]
    if args.json:
        print(json.dumps(items, indent=2, default=str))
        return 0
    for item in items:
        print(f"{item['name']}  ({item['distribution']})  {item['description']}")
        for key in ("params", "requires", "variables", "version", "presets"):
            if item.get(key):
                print(f"    {key}: {item[key]}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from gahb_bench import report, store
    from gahb_bench.sweep import default_paths

    path = Path(args.store)
    if not path.exists():
        raise GahbError(f"store {path} does not exist")
    store.read_identity(path)
    outdir = Path(args.out) if args.out else default_paths(path)[1]
    print(report.summary_table(path))
    for fig in report.figures(path, outdir):
        print(f"figure: {fig}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gahb", description="gahb-bench: the inductive biases of image denoisers.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="run (or resume) a battery on an architecture")
    p.add_argument("--arch", required=True, help="architecture name (see: gahb list architectures)")
    p.add_argument("--battery", default="standard", help="battery name (default: standard)")
    p.add_argument("--preset", default="smoke", help="preset of the battery: smoke, cpu, paper (default: smoke)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="override an architecture parameter (repeatable)")
    p.add_argument("--out", default="gahb-results", help="folder for the store, checkpoints and figures")
    p.add_argument("--store", help="explicit store path (default: OUT/ARCH-BATTERY-PRESET.zarr)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1, ...")
    p.add_argument("--executor", choices=("local", "dask"), default="local", help="where cells run")
    p.add_argument("--scheduler", help="Dask scheduler address (default: a LocalCluster)")
    p.add_argument("--workers", type=int, default=2, help="LocalCluster workers (dask executor)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("plugins", help="list installed plugins")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_plugins)

    p = sub.add_parser("list", help="list what plugins registered")
    p.add_argument("kind", choices=("architectures", "image-classes", "metrics", "batteries"))
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("report", help="print the summary table and redraw the figures of a store")
    p.add_argument("store")
    p.add_argument("--out", help="figure folder (default: beside the store)")
    p.set_defaults(func=_cmd_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except GahbError as exc:
        print(f"gahb: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("gahb: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
