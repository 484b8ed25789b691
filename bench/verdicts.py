"""What every benchmark does with its targets: a Markdown table with PASS or MISS for each, and
an exit status of 1 when any was missed, so that a MISS cannot pass unseen (in a shell, in CI).

No Django here: the benchmarks import it before they set Django up, and tests import it alone.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    """One line of a benchmark's verdict. `met` None: a figure shown with no target."""

    name: str
    measured: str
    met: bool | None


def report(targets: Sequence[Target]) -> int:
    """Print the targets as a Markdown table (target, measured, PASS/MISS/-) and return the
    exit status for them: 1 if any target was missed, else 0."""
    print("| target | measured | result |")
    print("| --- | --- | --- |")
    for target in targets:
        result = "-" if target.met is None else "PASS" if target.met else "MISS"
        print(f"| {target.name} | {target.measured} | {result} |")
    missed = [target.name for target in targets if target.met is False]
    if missed:
        print(f"\nMISS ({len(missed)}): " + "; ".join(missed), file=sys.stderr)
        return 1
    return 0
