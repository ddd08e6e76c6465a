"""How long `irbot demo` takes from the command to its exit, a few runs.

    python bench/demo_runtime.py [--runs 3]

Target (issue 6): under a minute, exit code 0.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    irbot = shutil.which("irbot")
    cmd = [irbot] if irbot else [sys.executable, "-m", "bot.cli"]
    times = []
    for _ in range(args.runs):
        started = time.monotonic()
        done = subprocess.run([*cmd, "demo"], capture_output=True, text=True, check=False)
        times.append(time.monotonic() - started)
        last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
        print(f"exit {done.returncode} after {times[-1]:.1f} s: {last}")
    print(f"irbot demo: {min(times):.1f} s best, {max(times):.1f} s worst of {args.runs}")


if __name__ == "__main__":
    main()
