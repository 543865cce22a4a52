"""``mla-sweep``: run sweeps of ``mlagents-learn`` on Ray Tune and report them.

mla-sweep run FILE [--address ADDR] [--storage PATH] [--resume] [--max-steps N]
mla-sweep report DIR [DIR ...] [--out OUT] [--title TEXT]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mla_sweep.config import SweepConfigError, load_sweep
from mla_sweep.version import __version__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mla-sweep",
        description="Seeds, hyperparameter searches and benchmarks of mlagents-learn on Ray Tune.",
    )
    parser.add_argument("--version", action="version", version=f"mla-sweep {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    summary = "run (or --resume) the sweep of a sweep file"
    run = commands.add_parser("run", help=summary, description=summary)
    run.add_argument("file", help="trainer YAML with a sweep: block")
    run.add_argument("--address", help="join this Ray cluster (default: start Ray here)")
    run.add_argument("--storage", default="sweeps", help="experiments folder (default: sweeps)")
    run.add_argument("--resume", action="store_true", help="continue an interrupted sweep")
    run.add_argument("--max-steps", type=int, help="replace every behavior's max_steps")
    run.add_argument("--num-cpus", type=int, help="CPUs of embedded Ray (default: all)")
    summary = "write the table, CSV and curves of finished trials"
    report = commands.add_parser("report", help=summary, description=summary)
    report.add_argument("dirs", nargs="+", help="sweep folders (<storage>/<sweep name>)")
    report.add_argument("--out", help="output folder (default: the first DIR)")
    report.add_argument("--title", default="", help="title of the report and plot")
    return parser


def _run(args: argparse.Namespace) -> int:
    try:
        sweep = load_sweep(args.file)
        if args.max_steps is not None:
            if args.max_steps < 1:
                raise SweepConfigError(f"--max-steps: {args.max_steps} must be >= 1")
            sweep = sweep.with_max_steps(args.max_steps)
    except SweepConfigError as err:
        print(f"mla-sweep: configuration error: {err}", file=sys.stderr)
        return 2
    from mla_sweep.runner import experiment_dir, run_sweep, trial_count

    print(
        f"mla-sweep: {sweep.name}: {trial_count(sweep)} trials "
        f"({len(sweep.variants) if sweep.search_alg == 'random' else sweep.samples} "
        f"configurations x {len(sweep.seeds)} seeds), {sweep.cpu:g} CPU each, "
        f"in {experiment_dir(sweep, args.storage)}",
        flush=True,
    )
    try:
        results = run_sweep(
            sweep, args.storage, address=args.address, resume=args.resume, num_cpus=args.num_cpus
        )
    except (FileNotFoundError, FileExistsError) as err:
        print(f"mla-sweep: {err}", file=sys.stderr)
        return 2
    failed = results.num_errors
    print(
        f"mla-sweep: {len(results) - failed} trials done, {failed} failed; "
        f"mla-sweep report {experiment_dir(sweep, args.storage)}",
        flush=True,
    )
    return 1 if failed else 0


def _report(args: argparse.Namespace) -> int:
    from mla_sweep.report import write_report

    try:
        table, files = write_report(args.dirs, args.out or args.dirs[0], args.title)
    except FileNotFoundError as err:
        print(str(err), file=sys.stderr)
        return 2
    print(table)
    print("wrote " + ", ".join(map(str, files)))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return _run(args) if args.command == "run" else _report(args)


if __name__ == "__main__":
    sys.exit(main())
