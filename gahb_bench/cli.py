"""``gahb``: argument parsing only; the work is done by the modules it calls.

Exit status: 0 success; 1 some cells failed (the store keeps what succeeded); 2 bad input
(a one-line message, nothing written); 3 the store is held by another live run (its lock names
the holder); 4 the store cannot be written (read-only media, a full disk: every finished cell is
kept); 130 interrupted, 143 terminated by SIGTERM (rerun to resume; the lock is released).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Sequence

from gahb_bench.errors import GahbError, LeaderboardError, ParamError, StoreEditedError
from gahb_bench.registry import KINDS


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
    from gahb_bench.acceleration import Acceleration
    from gahb_bench.registry import get_registry
    from gahb_bench.runner import RunSpec, resolve_params
    from gahb_bench.sweep import default_paths, default_store_name, run

    if args.executor != "dask" and (args.scheduler is not None or args.workers is not None):
        raise ParamError("--scheduler and --workers are options of the dask executor: add --executor dask")
    if args.scheduler is not None and args.workers is not None:
        raise ParamError("--workers sizes the LocalCluster that runs without --scheduler; a scheduler's "
                         "cluster has its own workers")
    registry = get_registry()
    arch = registry.architecture(args.arch)
    given = dict(parse_param(p) for p in args.param)
    params = resolve_params(arch.params, given, f"architecture {args.arch!r}")
    if args.store and args.out:
        raise ParamError("give --out (a folder: the store is named after the run) or --store (the store's path; its "
                         "checkpoints and figures go beside it), not both")
    acceleration = Acceleration(args.precision, args.channels_last, args.compile)
    store_path = (Path(args.store) if args.store else Path(args.out or "gahb-results") /
                  default_store_name(args.arch, params, arch.params, args.battery, args.preset, acceleration))
    checkpoints, _ = default_paths(store_path)
    spec = RunSpec(arch=args.arch, arch_params=params, battery=args.battery, preset=args.preset,
                   store=str(store_path), checkpoints=str(checkpoints), device=args.device, quiet=args.quiet,
                   experiments=tuple(args.experiment), acceleration=acceleration,
                   snapshot_minutes=args.snapshot_minutes)
    summary = run(spec, executor=args.executor, address=args.scheduler,
                  n_workers=2 if args.workers is None else args.workers)
    print(report.summary_table(summary.store))
    print(f"store: {summary.store}")
    for fig in summary.figures:
        print(f"figure: {fig}")
    print(f"cells: {summary.trained} trained, {summary.loaded} from checkpoints, {summary.baselines} baselines, "
          f"{summary.pairs} pairs, "
          f"{summary.already_done} already done, {len(summary.failed)} failed; {summary.seconds:.1f} s")
    for outcome in summary.failed:
        print(f"failed: {outcome.cell.label}: {outcome.message}", file=sys.stderr)
    if not summary.failed:
        print(f"next: gahb report {summary.store} --out DIR (the scorecard and every figure); gahb publish "
              f"{summary.store} --leaderboard DIR (a leaderboard entry, once every experiment of the preset is done)")
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


def _declares(record, image_size: int) -> dict[str, Any]:
    """What an image class declares at ``image_size`` with its default params."""
    try:
        return record.build(image_size, **record.params).declares()
    except Exception as exc:  # listing must not fail because one class cannot be built here
        return {"unavailable": f"{type(exc).__name__}: {exc}"}


def _describe(kind: str, entry, image_size: int = 32) -> dict[str, Any]:
    record = entry.record
    out: dict[str, Any] = {"name": record.name, "plugin": entry.plugin.name,
                           "distribution": entry.plugin.distribution, "description": record.description}
    if kind in ("architectures", "image-classes", "baselines", "references"):
        out["params"] = dict(record.params)
    if kind == "references":
        out["max_dim"] = record.max_dim
    if kind == "image-classes":
        out["declares"] = _declares(record, image_size)
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
    items = [_describe(args.kind, e, args.image_size) for e in registry.items(args.kind)]
    if args.json:
        print(json.dumps(items, indent=2, default=str))
        return 0
    for item in items:
        print(f"{item['name']}  ({item['distribution']})  {item['description']}")
        for key in ("params", "declares", "requires", "variables", "version", "presets"):
            if item.get(key):
                print(f"    {key}: {item[key]}")
    return 0


def _existing_store(text: str) -> Path:
    """The path of an existing gahb-bench store (:class:`GahbError` otherwise), for the commands
    that only read one."""
    from gahb_bench import store

    path = Path(text)
    if not path.exists():
        raise GahbError(f"store {path} does not exist")
    store.read_identity(path)
    return path


def _cmd_report(args: argparse.Namespace) -> int:
    from gahb_bench import report, scorecard, store
    from gahb_bench.errors import StoreError
    from gahb_bench.integrity import check_store
    from gahb_bench.sweep import default_paths

    path = _existing_store(args.store)
    sealed = store.is_sealed(path)
    if not sealed:
        print(f"gahb: note: {path} was written by an older gahb-bench without cell digests: its cells are not "
              "checked", file=sys.stderr)
    damages = [d for _, found in check_store(path).values() for d in found] if sealed else []
    if damages:
        raise StoreError(f"store {path} is damaged: {len(damages)} done cell(s) fail the integrity check, e.g. "
                         f"{damages[0].label} ({damages[0].reason}); rerun `gahb run` with the same arguments to "
                         f"recompute them (`gahb check {path}` lists them)")
    outdir = Path(args.out) if args.out else default_paths(path)[1]
    print(report.summary_table(path))
    experiments = scorecard.read(path)  # read once, for the table and the files
    print("\n".join(scorecard.table(scorecard.compute(experiments))))
    drawn = report.figures(path, outdir, formats=("svg",))
    for fig in drawn:
        print(f"figure: {fig} (and {fig.with_suffix('.svg').name})")
    for written in report.write_scorecard(path, outdir, drawn, experiments):
        print(f"scorecard: {written}")
    return 0


def _cmd_publish(args: argparse.Namespace) -> int:
    from gahb_bench.leaderboard.publish import publish

    entry = publish(_existing_store(args.store), Path(args.leaderboard), replace=args.replace,
                    on_removed=lambda old: print(f"removed: {old} (the same claim, replaced)"),
                    on_replaced=lambda old: print(f"replaced: {old} (its earlier publication, figures too)"))
    print(f"entry: {entry}")
    print(f"site: {Path(args.leaderboard) / 'site' / 'index.html'}")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from gahb_bench.leaderboard.verify import verify

    path = Path(args.entry)
    if not path.exists():
        raise ParamError(f"entry {path} does not exist")
    if path.is_dir():
        raise ParamError(f"entry {path} is a folder: give one entry's file, such as {path}/ID.json")
    verdict = verify(path, label=args.cell, seed=args.seed, device=args.device, quiet=args.quiet)
    for key, value in verdict.published.items():
        got = verdict.recomputed.get(key)
        print(f"{verdict.label}: {key} published {value:.3f} dB, " + (
            "not recomputed (another network than the entry claims)" if got is None else
            f"recomputed {got:.3f} dB (difference {got - value:+.3f}, tolerance {verdict.tolerance_db:g})"))
    published, built = verdict.n_parameters
    print(f"parameters: published {published}, its architecture and params build {built}"
          + ("" if published == built else " (MISMATCH)"))
    for note in verdict.notes:
        print(f"note: {note} (recomputed with other code)")
    print(f"{'matches' if verdict.matches else 'MISMATCH'} ({verdict.seconds:.1f} s)")
    return 0 if verdict.matches else 1


def _cmd_leaderboard(args: argparse.Namespace) -> int:
    from gahb_bench.leaderboard.publish import known_batteries
    from gahb_bench.leaderboard.site import build, check, compare_markdown

    folder = Path(args.dir)
    if not (folder / "entries").is_dir():
        raise ParamError(f"{folder} has no entries/ folder: not a leaderboard")
    if args.action == "build":
        print(f"site: {build(folder, known_batteries()) / 'index.html'}")
        return 0
    entries, problems = check(folder, known_batteries())
    if args.action == "compare":
        if problems:
            raise LeaderboardError(f"{folder} has invalid entries ({problems[0]}); `gahb leaderboard check` lists them")
        print(compare_markdown(entries, known_batteries()))
        return 0
    for problem in problems:
        print(f"invalid: {problem}")
    print(f"leaderboard {folder}: {len(entries)} entr{'y' if len(entries) == 1 else 'ies'} checked, "
          f"{len(problems)} problem(s)")
    return 1 if problems else 0


def _cmd_perf(args: argparse.Namespace) -> int:
    import torch

    from gahb_bench.perf import measure_all
    from gahb_bench.training import pick_device

    device = pick_device(args.device)
    print(f"gahb perf on {device} ({torch.get_num_threads()} torch threads; best of several calls; "
          f"ratios measured side by side in this run){' --quick' if args.quick else ''}")
    measure_all(device, quick=args.quick, flags=args.flags, note=lambda line: print(line, flush=True),
                size=args.size, batch=args.batch)
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from gahb_bench import store
    from gahb_bench.integrity import check_store
    from gahb_bench.runner import plan_of_store

    try:
        path = _existing_store(args.store)
    except StoreEditedError as exc:  # a store whose identity does not read: damaged, not bad input
        print(f"store {args.store}: DAMAGED: {exc}")
        return 1
    if not store.is_sealed(path):
        print(f"store {path}: cannot be checked: written by an older gahb-bench, without cell digests")
        return 1
    # The plan the installed battery makes for the store's identity checks every done cell
    # against its digest and, what no digest covers, the coordinates. A store this install
    # would not resume (another plugin or battery version) is not damaged for that: its cells
    # are checked on their own, its coordinates only not compared.
    try:
        plan = plan_of_store(path)
    except StoreEditedError as exc:
        print(f"store {path}: DAMAGED: {exc}")
        return 1
    except GahbError as exc:
        print(f"(its coordinates were not compared with its battery's: {exc})")
        results = check_store(path)
    else:
        results = {exp: (sum(1 for key in plan.done if key[0] == exp), [d for d in plan.damaged if d.experiment == exp])
                   for exp in store.experiments(path)}
    n_damaged = 0
    for experiment, (n_intact, damages) in results.items():
        print(f"{experiment}: {n_intact} done cells intact, {len(damages)} damaged")
        for damage in damages:
            print(f"  damaged: {damage.label}: {damage.reason}")
        n_damaged += len(damages)
    recorded = store.recorded_digest(path)
    if n_damaged:
        print(f"store {path}: DAMAGED ({n_damaged} cells); rerun `gahb run` with the same arguments to recompute them")
        return 1
    actual = store.scores_digest(path)
    if recorded and recorded != actual:
        print(f"store {path}: the scores digest recorded at the end of the last run ({recorded[:12]}…) differs from "
              f"the scores now ({actual[:12]}…): the store was changed after it finished")
        return 1
    print(f"store {path}: intact; scores digest {actual}" + ("" if recorded else " (no run has finished it yet)"))
    return 0


def _cmd_data_prepare(args: argparse.Namespace) -> int:
    from gahb_bench.data.prepare import prepare_dataset

    if args.size < 4:
        raise ParamError(f"--size must be at least 4 pixels, got {args.size}")
    if not 0.0 < args.threshold <= 1.0:
        raise ParamError(f"--threshold must be in (0, 1], got {args.threshold}")
    summary = prepare_dataset(args.source, args.src, data_root=args.data_root, name=args.name, size=args.size,
                              threshold=args.threshold, max_memory_bytes=args.max_memory,
                              overwrite=args.overwrite, progress=not args.quiet, workers=args.workers)
    counts = summary["counts"]
    print(f"dataset {summary['name']!r} ({summary['source']}, {summary['size']}x{summary['size']}) -> {summary['path']}")
    print("  " + ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in counts.items()))
    dedup = summary["dedup"]
    print(f"  near-duplicates: {dedup.get('pairs_found', 0)} pairs with |corr| > {args.threshold} among "
          f"{dedup.get('pairs_compared', 0)} compared; {summary['seconds']:.1f} s")
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of minutes: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number of minutes, 0 or more; got {text}")
    return value


def _memory(text: str) -> int:
    """Bytes from ``2G``, ``512M``, ``1e9`` or a plain integer."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    try:
        if text[-1:].upper() in units:
            return int(float(text[:-1]) * units[text[-1].upper()])
        return int(float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a memory size: {text!r} (e.g. 2G, 512M)") from None


def build_parser() -> argparse.ArgumentParser:
    from gahb_bench import __version__

    parser = argparse.ArgumentParser(prog="gahb", description="gahb-bench: the inductive biases of image denoisers.")
    parser.add_argument("--version", action="version", version=f"gahb-bench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="run (or resume) a battery on an architecture")
    p.add_argument("--arch", required=True, help="architecture name (see: gahb list architectures)")
    p.add_argument("--battery", default="standard", help="battery name (default: standard)")
    p.add_argument("--preset", default="smoke", help="preset of the battery: smoke, cpu, gpu, paper (default: smoke)")
    p.add_argument("--experiment", action="append", default=[], metavar="NAME",
                   help="run only this experiment of the preset (repeatable; default: all); a later run "
                        "without it completes the same store")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="override an architecture parameter (repeatable)")
    p.add_argument("--out", help="folder for the store, checkpoints and figures (default: gahb-results)")
    p.add_argument("--store", help="explicit store path, instead of --out (default: "
                                   "OUT/ARCH[-PARAMS][-FLAGS]-BATTERY-PRESET.zarr, with the params that differ from the "
                                   "defaults and the speed-up flags that are on; checkpoints and figures go beside it)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1, ...")
    p.add_argument("--precision", default="float32",
                   help="training precision: float32 (strict, the default), tf32 (CUDA convolutions and "
                        "matrix products) or bf16 (autocast); evaluation is always strict float32")
    p.add_argument("--channels-last", action="store_true", help="channels-last (NHWC) layout for training "
                                                                  "and evaluation")
    p.add_argument("--compile", action="store_true", help="torch.compile the forward pass (training and "
                                                          "evaluation)")
    p.add_argument("--executor", choices=("local", "dask"), default="local", help="where cells run")
    p.add_argument("--scheduler", help="Dask scheduler address (default: a LocalCluster)")
    p.add_argument("--workers", type=_positive_int, help="LocalCluster workers (dask executor without "
                                                              "--scheduler; default 2)")
    p.add_argument("--snapshot-minutes", type=_minutes, default=10.0, metavar="M",
                   help="save a training in progress every M minutes of training, so that a killed run "
                        "resumes it there (default 10; 0: no snapshots)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("plugins", help="list installed plugins")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_plugins)

    p = sub.add_parser("list", help="list what plugins registered")
    p.add_argument("kind", choices=tuple(KINDS))
    p.add_argument("--image-size", type=int, default=32, help="size at which image classes report what they declare")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("data", help="prepare real photographs (CelebA, LSUN, any folder)")
    data = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    p = data.add_parser("prepare", help="read, crop, resize, de-duplicate and store a folder of images")
    p.add_argument("source", choices=("celeba", "lsun", "folder"), help="crop rules (see datasets/*.md)")
    p.add_argument("--src", required=True, help="the folder of source images (searched recursively)")
    p.add_argument("--name", help="dataset name (default: the source)")
    p.add_argument("--size", type=int, default=80, help="image side in pixels (default 80, the paper's)")
    p.add_argument("--threshold", type=float, default=0.95, help="|corr| of near-duplicates (default 0.95)")
    p.add_argument("--max-memory", type=_memory, default=1 << 30, help="working memory, e.g. 2G (default 1G)")
    p.add_argument("--data-root", help="where datasets go (default: $GAHB_DATA_ROOT or ./gahb-data)")
    p.add_argument("--workers", type=_positive_int, help="decoding threads (default: min(8, CPUs))")
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset of that name")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_data_prepare)

    p = sub.add_parser("perf", help="measure training, evaluation, sampler, Jacobian and search speed "
                                    "against this machine's matrix-multiply rate")
    p.add_argument("--quick", action="store_true", help="small sizes (about a minute on 2 cores; for CI)")
    p.add_argument("--flags", action="store_true", help="also time the training step under --precision bf16, "
                                                       "--channels-last and --compile")
    p.add_argument("--size", type=_positive_int, help="image size of the training step and evaluation "
                                                     "(default 16 with --quick, else 32; 80: the paper's 3-block UNet)")
    p.add_argument("--batch", type=_positive_int, help="training batch (default 32)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1, ...")
    p.set_defaults(func=_cmd_perf)

    p = sub.add_parser("publish", help="check a store, write its leaderboard entry and figures, rebuild the site")
    p.add_argument("store")
    p.add_argument("--leaderboard", default="leaderboard", help="leaderboard folder (default: ./leaderboard)")
    p.add_argument("--replace", action="store_true", help="replace an entry of the same architecture, params, "
                                                          "flags, preset and battery numbers (the same version, "
                                                          "or an earlier one with the same numbers)")
    p.set_defaults(func=_cmd_publish)

    p = sub.add_parser("verify", help="recompute one cell of a leaderboard entry and compare with the published "
                                      "scores (exit 1 on a mismatch)")
    p.add_argument("entry", help="an entry file (leaderboard/entries/ID.json)")
    p.add_argument("--cell", help="the cell's label, e.g. 'generalization/photographs N=1 S1 seed=0' "
                                  "(default: one drawn at random)")
    p.add_argument("--seed", type=int, help="seed of the random choice of cell")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1, ...")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=_cmd_verify)

    p = sub.add_parser("leaderboard", help="check the entries of a leaderboard (exit 1 when one is invalid), "
                                           "build its static site, or print the architectures compared along "
                                           "each axis of bias (Markdown)")
    p.add_argument("action", choices=("check", "build", "compare"))
    p.add_argument("dir", nargs="?", default="leaderboard", help="leaderboard folder (default: ./leaderboard)")
    p.set_defaults(func=_cmd_leaderboard)

    p = sub.add_parser("check", help="check a store's integrity (exit 1 when damaged)")
    p.add_argument("store")
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser("report", help="print the summary table and the scorecard, redraw the figures (PNG and SVG) and "
                                      "write the scorecard (JSON, Markdown) of a store")
    p.add_argument("store")
    p.add_argument("--out", help="folder for the figures and the scorecard (default: beside the store)")
    p.set_defaults(func=_cmd_report)
    return parser


class Terminated(BaseException):
    """SIGTERM (a job scheduler's stop, ``kill``): unwound like Ctrl-C (a ``BaseException``, so
    that no cell's ``except Exception`` records it as the cell's failure), so the store's lock is
    released and nothing finished is lost."""


def _terminate(signum, frame):
    raise Terminated()


def _stdout_reader_left() -> bool:
    """Whether stdout is a pipe whose reader left (`gahb list ... | head`: polling its write end
    reports an error); then stdout is pointed at /dev/null, so that flushing it at exit raises
    no second error."""
    import select

    try:
        fd = sys.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        if not any(events & select.POLLERR for _, events in poller.poll(0)):
            return False
        os.dup2(os.open(os.devnull, os.O_WRONLY), fd)
        return True
    except (OSError, ValueError, AttributeError):  # no descriptor (a stream replaced in process), no poll
        return False


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    try:
        return args.func(args)
    except Terminated:
        return _stopped("terminated", 143)
    except GahbError as exc:
        print(f"gahb: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # a path that cannot be read or written: the user's to fix
        if isinstance(exc, BrokenPipeError) and _stdout_reader_left():
            return 141  # 128 + SIGPIPE: what a shell reports for a writer whose reader left; nothing to say
        print(f"gahb: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return _stopped("interrupted", 130)


def _stopped(how: str, code: int) -> int:
    """A deliberate stop: one line, nothing of the store reads it abandoned, exit ``code``."""
    from gahb_bench.store import quiet_abandoned_reads

    quiet_abandoned_reads()
    print(f"gahb: {how}; rerun the same command to resume", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
