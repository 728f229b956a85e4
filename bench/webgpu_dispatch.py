"""`python -m bench.webgpu_dispatch`: a TinyJit training step on WebGPU in headless Chromium,
one submit per kernel (tinygrad's default for devices without a graph) against one submit per step
(our WebGpuGraph). Prints one JSON line per variant, then their ratio.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from harness.chromium import chromium, wait_for_state
from harness.pyworker import call_in_worker
from harness.server_process import running_server


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=30, help="timed steps per variant")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=128)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as data,
        running_server(Path(data)) as url,
        chromium() as driver,
    ):
        driver.get(url)
        if (state := wait_for_state(driver, timeout=120)) != "ready":
            print(f"error: the page did not become ready (state {state!r})", file=sys.stderr)
            return 1
        results = call_in_worker(
            driver,
            Path(__file__).with_name("webgpu_dispatch_steps.py"),
            "measure",
            timeout=600,
            steps=args.steps,
            batch=args.batch,
            hidden=args.hidden,
        )
    for row in results:
        print(json.dumps(row))
    by_variant = {r["variant"]: r["ms_per_step"] for r in results}
    ratio = by_variant["per-kernel-submit"] / by_variant["batched-submit"]
    print(json.dumps({"metric": "per-kernel / batched ms_per_step", "ratio": round(ratio, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
