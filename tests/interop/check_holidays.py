#!/usr/bin/env python3
"""ngayle's official days off against python `holidays` (holidays.VN, observed=True), an
independent implementation of Vietnam's public holidays: every weekday one of them gives off
and the other does not must be listed, with its reason, in holidays-differences.tsv — and
every line there must still be a difference.

    check_holidays.py --bin NGAYLE --config CONFIG --from-year 2024 --to-year 2030
"""

from __future__ import annotations

import argparse
import datetime as dt
import pathlib
import subprocess
import sys

import holidays

from expected import check
import expected as ref

HERE = pathlib.Path(__file__).resolve().parent


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--from-year", type=int, required=True)
    ap.add_argument("--to-year", type=int, required=True)
    args = ap.parse_args()
    years = range(args.from_year, args.to_year + 1)
    ngayle: dict[dt.date, str] = {}
    for y in years:
        p = subprocess.run([args.bin, "--config", args.config, "days-off", "--year", str(y), "--format", "tsv"],
                           capture_output=True, text=True, timeout=60)
        check(f"ngayle days-off --year {y}: exit 0", p.returncode == 0, p.stderr[-400:])
        for line in p.stdout.splitlines():
            day, kind, why, _basis = line.split("\t")
            if kind == "off":
                ngayle[dt.date.fromisoformat(day)] = why
    package = holidays.VN(years=years, observed=True, language="vi")
    weekday = lambda d: d.weekday() < 5  # noqa: E731
    ours = {d for d in ngayle if weekday(d)}
    theirs = {d for d in package if weekday(d)}
    listed: dict[dt.date, tuple[str, str]] = {}
    for line in (HERE / "holidays-differences.tsv").read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        day, side, reason = line.split("\t")
        listed[dt.date.fromisoformat(day)] = (side, reason)
    both = ours & theirs
    check(f"ngayle and holidays {holidays.__version__} agree on most weekday days off {args.from_year}-{args.to_year}",
          len(both) >= 9 * len(years), f"{len(both)} in common")
    unexplained = []
    for d in sorted(ours ^ theirs):
        side = "ngayle" if d in ours else "holidays"
        if listed.get(d, ("",))[0] != side:
            unexplained.append(f"{d} off in {side} only ({ngayle.get(d) or package.get(d)})")
    check("every difference is listed in holidays-differences.tsv with its reason", not unexplained,
          "; ".join(unexplained[:6]))
    stale = [str(d) for d in listed if d not in (ours ^ theirs)]
    check("every line of holidays-differences.tsv is still a difference", not stale, ", ".join(stale))
    return 1 if ref.FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
