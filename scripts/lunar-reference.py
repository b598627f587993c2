#!/usr/bin/env python3
"""Reference fixture for the lunar calendar: tests/fixtures/lunar-months.tsv.

Computes the Vietnamese lunar date (UTC+7) of EVERY day 1968-01-01..=2199-12-31
with two independent implementations from PyPI:

  * vnlunar   (vnlunar.convert_solar_to_lunar(dd, mm, yy, 7.0)), every day;
  * lunar-vn  (lunar_vn.solar_to_lunar(datetime.date)), every day it covers
    (up to 2100-12-31),

fails (exit 1, listing the days) if the two disagree on any day, and writes the
vnlunar days as lossless run-length encoding: one line per lunar-month segment,

    first_solar_date  lunar_year  lunar_month  leap(0/1)  first_lunar_day  days

Within a segment the lunar day grows by exactly one per solar day (asserted
while encoding), so expanding the file gives back every reference day.

Usage:
    python3 scripts/lunar-reference.py > tests/fixtures/lunar-months.tsv
    python3 scripts/lunar-reference.py --check tests/fixtures/lunar-months.tsv

The check mode regenerates the file in memory and compares it with the given
one (exit 1 on any difference); CI runs it. Needs `pip install vnlunar==1.0.5
lunar-vn==1.4.0`.
"""

import argparse
import datetime
import difflib
import sys
from importlib.metadata import version

try:
    import lunar_vn
    import vnlunar
except ImportError as err:
    sys.exit(f"lunar-reference: {err}; run `pip install vnlunar==1.0.5 lunar-vn==1.4.0`")

FIRST = datetime.date(1968, 1, 1)
LAST = datetime.date(2199, 12, 31)
# lunar-vn supports solar years 1900..=2100 only.
LUNAR_VN_LAST = datetime.date(2100, 12, 31)
TIME_ZONE = 7.0
WRITE_COMMAND = "python3 scripts/lunar-reference.py > tests/fixtures/lunar-months.tsv"
CHECK_COMMAND = "python3 scripts/lunar-reference.py --check tests/fixtures/lunar-months.tsv"
# At most this many disagreements are listed in full.
MAX_LISTED = 50


class ReferenceError(Exception):
    """The references are unusable: they disagree, or look malformed."""


def days(first, last):
    day = first
    one = datetime.timedelta(days=1)
    while day <= last:
        yield day
        day += one


def vnlunar_day(day):
    """(year, month, leap, day) of `day` according to vnlunar."""
    r = vnlunar.convert_solar_to_lunar(day.day, day.month, day.year, TIME_ZONE)
    return (int(r["year"]), int(r["month"]), bool(r["leap"]), int(r["day"]))


def lunar_vn_day(day):
    """(year, month, leap, day) of `day` according to lunar-vn."""
    r = lunar_vn.solar_to_lunar(day)
    return (int(r.year), int(r.month), bool(r.leap), int(r.day))


def show(lunar):
    year, month, leap, day = lunar
    return f"{day}/{month}{'n' if leap else ''}/{year}"


def reference():
    """Every day FIRST..=LAST with its vnlunar date, cross-checked with lunar-vn."""
    result = []
    disagreements = []
    for day in days(FIRST, LAST):
        ours = vnlunar_day(day)
        if day <= LUNAR_VN_LAST:
            theirs = lunar_vn_day(day)
            if theirs != ours:
                disagreements.append(
                    f"{day}: vnlunar {show(ours)}, lunar-vn {show(theirs)}"
                )
        result.append((day, ours))
    if disagreements:
        listed = "\n  ".join(disagreements[:MAX_LISTED])
        more = len(disagreements) - MAX_LISTED
        tail = f"\n  ... and {more} more" if more > 0 else ""
        raise ReferenceError(
            f"vnlunar and lunar-vn disagree on {len(disagreements)} day(s):\n  {listed}{tail}"
        )
    return result


def encode(reference_days):
    """Run-length encode (day, (year, month, leap, lunar_day)) pairs.

    A new segment starts whenever the lunar month changes; it must start on
    lunar day 1 except for the very first one. Within a segment the lunar day
    must grow by exactly one per solar day, the solar days must be consecutive,
    and no month may be longer than 30 days.
    """
    segments = []  # [first_day, year, month, leap, first_lunar_day, count]
    previous = None
    for day, (year, month, leap, lunar_day) in reference_days:
        if not 1 <= lunar_day <= 30 or not 1 <= month <= 12:
            raise ReferenceError(f"{day}: impossible lunar date {show((year, month, leap, lunar_day))}")
        if previous is not None and day != previous + datetime.timedelta(days=1):
            raise ReferenceError(f"{day}: not the day after {previous}")
        seg = segments[-1] if segments else None
        if seg is not None and (seg[1], seg[2], seg[3]) == (year, month, leap):
            expected = seg[4] + seg[5]
            if lunar_day != expected:
                raise ReferenceError(
                    f"{day}: lunar day {lunar_day} in month {month}{'n' if leap else ''}/{year},"
                    f" expected {expected}"
                )
            seg[5] += 1
        else:
            if seg is not None and lunar_day != 1:
                raise ReferenceError(
                    f"{day}: month {month}{'n' if leap else ''}/{year} starts on day {lunar_day}"
                )
            segments.append([day, year, month, leap, lunar_day, 1])
        previous = day
    return segments


def decode(segments):
    """The inverse of `encode`, to prove the encoding lossless."""
    for first_day, year, month, leap, first_lunar_day, count in segments:
        for i in range(count):
            yield first_day + datetime.timedelta(days=i), (year, month, leap, first_lunar_day + i)


def render(segments):
    lines = [
        "# Vietnamese lunar calendar (UTC+7), every day 1968-01-01..=2199-12-31, run-length encoded.",
        f"# Reference: vnlunar {version('vnlunar')} convert_solar_to_lunar(dd, mm, yy, 7.0), every day;",
        f"# cross-checked day by day with lunar-vn {version('lunar-vn')} solar_to_lunar(date)"
        f" for 1968-01-01..={LUNAR_VN_LAST.isoformat()} (its range): no disagreement.",
        f"# Generated by: {WRITE_COMMAND}",
        f"# Checked by:   {CHECK_COMMAND}",
        "# One line per lunar month (the first one may start mid-month); within a line the",
        "# lunar day grows by one per solar day.",
        "# first_solar_date\tlunar_year\tlunar_month\tleap\tfirst_lunar_day\tdays_in_segment",
    ]
    for first_day, year, month, leap, first_lunar_day, count in segments:
        lines.append(
            f"{first_day.isoformat()}\t{year}\t{month}\t{int(leap)}\t{first_lunar_day}\t{count}"
        )
    return "\n".join(lines) + "\n"


def generate():
    ref = reference()
    segments = encode(ref)
    if list(decode(segments)) != ref:
        raise ReferenceError("internal error: decoding the segments does not give the reference back")
    return render(segments)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check",
        metavar="FIXTURE",
        help="regenerate in memory and compare with FIXTURE instead of printing",
    )
    args = parser.parse_args()
    try:
        text = generate()
    except ReferenceError as err:
        print(f"lunar-reference: {err}", file=sys.stderr)
        return 1
    if args.check is None:
        sys.stdout.write(text)
        return 0
    try:
        with open(args.check, encoding="utf-8") as f:
            committed = f.read()
    except OSError as err:
        print(f"lunar-reference: cannot read {args.check}: {err}", file=sys.stderr)
        return 1
    if committed == text:
        print(f"lunar-reference: {args.check} is up to date", file=sys.stderr)
        return 0
    diff = list(
        difflib.unified_diff(
            committed.splitlines(keepends=True),
            text.splitlines(keepends=True),
            fromfile=args.check,
            tofile="regenerated",
        )
    )
    sys.stderr.writelines(diff[:200])
    if len(diff) > 200:
        print(f"... ({len(diff) - 200} more diff lines)", file=sys.stderr)
    print(
        f"lunar-reference: {args.check} differs from the references; regenerate with: {WRITE_COMMAND}",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
