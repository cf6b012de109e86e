"""The `kolab` console script: init, check, run, template, sample-data.

Exit code 0 on success; on failure a one-line reason on stderr and exit code 1 (2 for usage).
`kolab check` exits 1 when it finds an error (warnings alone: 0).
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from kolab_pipeline.calendar import validate_period
from kolab_pipeline.catalog import FORMS
from kolab_pipeline.config import Settings, kolab_home


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _parse_month(text: str) -> str:
    try:
        return validate_period(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a month (YYYY-MM)") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kolab", description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=None,
                        help="KOLAB_HOME (default: $KOLAB_HOME or ./data)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("sample-data", help="generate landing files, registry and ground truth")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--as-of", type=_parse_date, default=None,
                   help="date the data is generated for (default today)")
    p.add_argument("--scale", choices=["kabupaten", "national"], default="kabupaten")
    p.add_argument("--months", type=int, default=24, help="number of monthly periods")
    p.add_argument("--clean", action="store_true", help="no messy variants or broken files")
    p.add_argument("--fraction", type=float, default=1.0,
                   help="national scale: keep this share of the kab/kota "
                        "(benchmark scaling series)")

    p = sub.add_parser("init", help="starter registry, sasaran skeleton, kolab.yaml and "
                                    "templates for your kab/kota (never overwrites your edits)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--kabkota", help="Kemendagri kab/kota code (e.g. 36.72) or name")
    where.add_argument("--provinsi", help="Kemendagri provinsi code (e.g. 36) or name")
    p.add_argument("--tahun", type=int, default=None,
                   help="year of the sasaran skeleton (default: year of reporting.as_of, else "
                        "this year)")

    p = sub.add_parser("check", help="pre-flight check of the registry, sasaran, receipt log "
                                     "and landing files; exit 1 on errors")
    p.add_argument("--all", action="store_true", help="list every finding (default: at most "
                                                      "20 per kind)")
    p.add_argument("--quick", action="store_true",
                   help="skip reading the landing files (what `kolab run` checks at its start)")

    p = sub.add_parser("run", help="materialise every asset for the months present")
    p.add_argument("--month", type=_parse_month, action="append",
                   help="month to run (YYYY-MM). Once: that month; twice or more: every month "
                        "from the earliest to the latest given (a range, run as one). Later "
                        "months of the same year that have data are re-run too (their "
                        "year-to-date rows include it). Default: every month with data")

    p = sub.add_parser("template", help="write the blank clinic template of a form")
    p.add_argument("form", choices=list(FORMS))
    p.add_argument("--out", type=Path, default=Path("."), help="output folder")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    home = (args.home or kolab_home()).resolve()
    try:
        if args.command == "sample-data":
            from kolab_pipeline.sample import generate

            summary = generate(home, seed=args.seed, as_of=args.as_of or date.today(),
                               scale=args.scale, months=args.months, messy=not args.clean,
                               fraction=args.fraction)
            print(summary)
        elif args.command == "init":
            from kolab_pipeline.onboarding.init import init_home

            print(init_home(home, kabkota=args.kabkota, provinsi=args.provinsi,
                            tahun=args.tahun))
        elif args.command == "check":
            from kolab_pipeline.onboarding.check import run_checks

            report = run_checks(home, deep=not args.quick)
            for line in report.lines(limit=None if args.all else 20):
                print(line)
            print(report.summary())
            return 1 if report.errors else 0
        elif args.command == "run":
            from kolab_pipeline.orchestration.runner import run_pipeline

            print(run_pipeline(Settings.load(home), months=args.month))
        elif args.command == "template":
            from kolab_pipeline.templates import write_template

            for path in write_template(args.form, args.out):
                print(path)
    except KeyboardInterrupt:
        print("kolab: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the one place that turns any failure into a one-line reason
        print(f"kolab {args.command}: {type(exc).__name__}: {exc}".splitlines()[0],
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
