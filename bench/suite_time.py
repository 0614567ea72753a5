"""Run the template's whole test suite and print where the time goes.

    python3 bench/suite_time.py [extra pytest arguments]

Prints the wall time, how many variants were proven (every check of the variant
passed), the time per kind of check summed over variants, and the slowest steps.
A figure, not a test: these machines are shared and noisy.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import VARIANTS, variant_id  # noqa: E402

VARIANT = re.compile(r"\[(?P<variant>[a-z0-9-]+)\]$")


ALL_IDS = {variant_id(v) for v in VARIANTS}


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "junit.xml"
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", f"--junitxml={report}", *sys.argv[1:]],
            cwd=ROOT,
            check=False,
        )
        wall = time.monotonic() - started
        cases = ET.parse(report).getroot().iter("testcase")
        rows = []
        for case in cases:
            outcome = "passed"
            for child in case:
                if child.tag in {"failure", "error"}:
                    outcome = "failed"
                elif child.tag == "skipped":
                    outcome = "skipped"
            rows.append((case.get("name", ""), float(case.get("time", 0)), outcome))

    variants: dict[str, set[str]] = defaultdict(set)
    per_check: dict[str, list[float]] = defaultdict(list)
    for name, seconds, outcome in rows:
        check = name.split("[")[0]
        per_check[check].append(seconds)
        match = VARIANT.search(name.split("@")[0])
        if match and match["variant"] in ALL_IDS:
            variants[match["variant"]].add(outcome)
    proven = [v for v, outcomes in variants.items() if outcomes == {"passed"}]

    print(f"\nwall time: {wall:.0f} s  ({len(rows)} checks)")
    print(f"variants proven: {len(proven)} of {len(VARIANTS)}")
    for outcome in ("passed", "failed", "skipped"):
        print(f"  {outcome}: {sum(1 for r in rows if r[2] == outcome)}")
    print("\ntime per kind of check (summed over variants; runs 2 at a time):")
    for check, times in sorted(per_check.items(), key=lambda item: -sum(item[1]))[:12]:
        print(f"  {sum(times):7.1f} s  {len(times):3d} x  {check}")
    print("\nslowest steps:")
    for name, seconds, _ in sorted(rows, key=lambda r: -r[1])[:8]:
        print(f"  {seconds:6.1f} s  {name.split('@')[0]}")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
