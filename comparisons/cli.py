"""``tfppo-compare`` / ``python -m tfppo.comparisons`` / ``python scripts/compare.py``: run, table, plot, report.

    compare.py run SUITE [--seeds N] [--jobs J] [--out DIR] [--scheduler tcp://HOST:PORT]
    compare.py status SUITE [--out DIR] ...   # the same arguments: done / running / failed / left, time left
    compare.py table DIR      # DIR = <out>/<suite>: statistics -> tables (printed and written)
    compare.py plot DIR       # figures (PNG + SVG)
    compare.py report DIR     # tables + figures + REPORT.md

Bad input (unknown suite, malformed file, unknown key/env/preset/switch, a results directory of
another suite definition) stops with one line and exit code 2 before anything is written.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tfppo import ConfigError
from tfppo.cli.common import OneLineParser, fail, prog_name
from tfppo.comparisons import bundled_suites

DEFAULT_OUT = "runs/compare"
EXIT_INTERRUPTED = 130


def parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=prog_name(), description="PPO1 vs PPO2 on matched seeds: run suites, then report")
    sub = p.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    run = sub.add_parser("run", help="run a suite (resumable)")
    status = sub.add_parser("status", help="where a suite run stands (the same arguments as run; reads only)")
    for verb in (run, status):
        verb.add_argument("suite", help=f"bundled suite name ({', '.join(bundled_suites())}) "
                                        "or a YAML path")
        verb.add_argument("--seeds", type=int, default=None, help="run seeds 0..N-1 instead of the suite's")
        verb.add_argument("--envs", default=None, help="comma-separated subset of the suite's envs to run now")
        verb.add_argument("--jobs", type=int, default=None,
                          help="cores to fill (default: all); PPO1 with W workers takes W")
        verb.add_argument("--out", default=DEFAULT_OUT, help=f"results root (default {DEFAULT_OUT})")
    run.add_argument("--scheduler", default=None, help="Dask scheduler address, e.g. tcp://HOST:8786")
    run.add_argument("--no_table", action="store_true", help="do not print the table at the end")
    for name, help_text in (("table", "statistics -> tables"), ("plot", "figures"),
                            ("report", "tables, figures and REPORT.md")):
        verb = sub.add_parser(name, help=help_text)
        verb.add_argument("dir", help="a suite results directory: <out>/<suite>")
    publish = sub.add_parser("publish", help="copy a suite's results for committing (JSON + tidy CSV), then report")
    publish.add_argument("dir", help="a suite results directory: <out>/<suite>")
    publish.add_argument("dest", help="where to publish, e.g. comparisons/results/<suite>")
    for verb in (v for name, v in sub.choices.items() if name != "status"):
        verb.add_argument("--reps", type=int, default=2000, help="bootstrap resamples (default 2000)")
        verb.add_argument("--bootstrap_seed", type=int, default=0, help="seed of every bootstrap (default 0)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return _dispatch(args)
    except ConfigError as exc:
        fail(prog_name(), str(exc))
    except FileNotFoundError as exc:
        fail(prog_name(), str(exc))


def run() -> int:
    """The console script ``tfppo-compare``."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return main()


def _settings(args):
    from tfppo.comparisons.stats import BootstrapSettings

    if args.reps < 100:
        raise ConfigError(f"--reps must be >= 100 bootstrap resamples, got {args.reps}")
    return BootstrapSettings(reps=args.reps, seed=args.bootstrap_seed)


def _suite_dir(path: str) -> Path:
    suite_dir = Path(path)
    if not suite_dir.is_dir():
        raise ConfigError(f"results directory {path!r} does not exist (expected <out>/<suite>)")
    return suite_dir


def _dispatch(args) -> int:
    if args.command == "status":
        return _status(args)
    settings = _settings(args)
    if args.command == "run":
        return _run(args, settings)
    from tfppo.comparisons import report

    if args.command == "publish":
        from tfppo.comparisons.tidy import publish

        n_runs = publish(_suite_dir(args.dir), Path(args.dest))
        print(f"published {n_runs} runs to {args.dest}")
        args.command, args.dir = "report", args.dest
    analysis = report.analyse(_suite_dir(args.dir), settings)
    if args.command == "table":
        print(report.console_tables(analysis))
        written = report.write_tables(analysis)
    elif args.command == "plot":
        written = report.write_figures(analysis, settings)
    else:
        written = report.write_tables(analysis)
        figures = report.write_figures(analysis, settings)
        written += figures + [report.write_report(analysis, figures)]
    print(f"wrote {len(written)} files under {analysis.suite_dir / report.REPORT_DIR}"
          + (f" and {analysis.suite_dir / 'REPORT.md'}" if args.command == "report" else ""))
    return 0


def _suite_from_args(args):
    """The suite as `run` and `status` select it: --seeds, --envs (and --jobs checked)."""
    from tfppo.comparisons.suite import load_suite

    if args.jobs is not None and args.jobs <= 0:
        raise ConfigError(f"--jobs must be a positive integer, got {args.jobs}")
    suite = load_suite(args.suite)
    if args.seeds is not None:
        suite = suite.with_seeds(args.seeds)
    if args.envs:
        suite = suite.only_envs([e.strip() for e in args.envs.split(",") if e.strip()])
    return suite


def _status(args) -> int:
    from tfppo.comparisons.status import describe

    suite = _suite_from_args(args)
    suite_dir = Path(args.out) / suite.name
    if not suite_dir.is_dir():
        raise ConfigError(f"no results of suite {suite.name!r} under {args.out!r} (expected {suite_dir}); "
                          "give the --out of its `compare.py run`")
    print(describe(suite, suite_dir, args.jobs or os.cpu_count() or 1))
    return 0


def _run(args, settings) -> int:
    from tfppo.comparisons.runner import SuiteRunner

    suite = _suite_from_args(args)
    runner = SuiteRunner(suite, args.out, jobs=args.jobs, scheduler=args.scheduler)
    outcome = runner.run()
    counts = outcome.counts
    print(f"{suite.name}: {counts.done} runs finished now, {counts.skipped} earlier, {counts.failed} failed"
          f"{' (interrupted)' if outcome.interrupted else ''}; results in {outcome.suite_dir}", file=sys.stderr)
    for key, error in outcome.failures.items():
        print(f"  failed: {'/'.join(map(str, key))}: {error}", file=sys.stderr)
    if outcome.interrupted:
        return EXIT_INTERRUPTED
    if not args.no_table and (counts.done or counts.skipped):
        from tfppo.comparisons import report

        analysis = report.analyse(outcome.suite_dir, settings)
        print(report.console_tables(analysis))
    return 1 if outcome.failures else 0


if __name__ == "__main__":
    sys.exit(main())
