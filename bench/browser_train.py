"""`python -m bench.browser_train`: samples/s of the same MNIST CNN training in one headless Chromium, PyDisco
(tinygrad on WebGPU, in the page's worker) beside TensorFlow.js (DISCO's engine) with its webgl, webgpu and cpu
backends where available: identical architecture, batch size and data, in the same run.

One JSON line per implementation (first-step seconds, steady ms/step, samples/s), then PyDisco's ratio to each.
Chromium runs with --enable-unsafe-swiftshader too, so that WebGL, like WebGPU, has SwiftShader when there is
no GPU.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from harness.chromium import chromium, wait_for_state
from harness.pyworker import call_in_worker
from harness.server_process import ROOT, running_server
from provision.bench_assets import install_tfjs

TFJS_BACKENDS = ["webgl", "webgpu", "cpu"]
TFJS_RUN = """
const [urls, imagesB64, labels, batch, backends, done] = arguments;
const load = (src) => new Promise((ok, fail) => {
  const s = document.createElement("script");
  s.src = src; s.onload = ok; s.onerror = () => fail(new Error("cannot load " + src));
  document.head.append(s);
});
(async () => {
  for (const url of urls) await load(url);
  const bytes = Uint8Array.from(atob(imagesB64), (c) => c.charCodeAt(0));
  const n = labels.length, steps = Math.floor(n / batch), results = [];
  for (const backend of backends) {
    let ok = false;
    try { ok = await tf.setBackend(backend); await tf.ready(); } catch (e) { ok = false; }
    if (!ok) { results.push({ impl: "tfjs-" + backend, available: false }); continue; }
    const x = tf.tidy(() => tf.tensor4d(Int32Array.from(bytes), [n, 28, 28, 1], "int32").toFloat().div(255));
    const y = tf.tensor1d(labels, "float32");
    const model = tf.sequential({ layers: [
      tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 8, kernelSize: 3, padding: "same", activation: "relu" }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.conv2d({ filters: 16, kernelSize: 3, padding: "same", activation: "relu" }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 64, activation: "relu" }),
      tf.layers.dense({ units: 10, activation: "softmax" }),
    ] });
    model.compile({ optimizer: tf.train.adam(1e-3), loss: "sparseCategoricalCrossentropy" });
    const stamps = [], start = performance.now();
    for (let i = 0; i < steps; i++) {
      const xb = x.slice([i * batch, 0, 0, 0], [batch, 28, 28, 1]), yb = y.slice([i * batch], [batch]);
      await model.trainOnBatch(xb, yb);  // resolves with the loss: the step has finished
      xb.dispose(); yb.dispose();
      stamps.push(performance.now());
    }
    const durations = stamps.map((t, i) => t - (i ? stamps[i - 1] : start));
    const steady = durations.slice(3).sort((a, b) => a - b);
    const ms = steady[Math.floor(steady.length / 2)];
    results.push({ impl: "tfjs-" + backend, available: true, backend: tf.getBackend(),
      first_step_s: +(durations[0] / 1000).toFixed(3), ms_per_step: +ms.toFixed(2),
      samples_per_s: +(batch * 1000 / ms).toFixed(1) });
    model.dispose(); x.dispose(); y.dispose();
  }
  done(results);
})().catch((e) => done({ error: String(e) }));
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=24, help="training steps per implementation")
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    scripts = install_tfjs(ROOT / ".cache" / "downloads", ROOT / "www" / "vendor")
    rng = np.random.default_rng(0)
    count = args.steps * args.batch
    images = rng.integers(0, 256, size=(count, 28, 28, 1), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, size=count)]
    images_b64 = base64.b64encode(images.tobytes()).decode()
    with (
        tempfile.TemporaryDirectory() as data,
        running_server(Path(data)) as url,
        chromium(extra_flags=("--enable-unsafe-swiftshader",)) as driver,
    ):
        driver.get(url)
        if (state := wait_for_state(driver, timeout=120)) != "ready":
            print(f"error: the page did not become ready (state {state!r})", file=sys.stderr)
            return 1
        ours = call_in_worker(
            driver, Path(__file__).with_name("browser_train_steps.py"), "measure", timeout=900,
            images_b64=images_b64, labels=labels, batch=args.batch,
        )  # fmt: skip
        driver.set_script_timeout(1800)
        theirs: Any = driver.execute_async_script(TFJS_RUN, scripts, images_b64, labels, args.batch, TFJS_BACKENDS)
    if isinstance(theirs, dict):
        print(f"error: TensorFlow.js failed: {theirs['error']}", file=sys.stderr)
        return 1
    for row in [ours, *theirs]:
        print(json.dumps({"batch": args.batch, **row}))
    for row in theirs:
        if row["available"]:
            ratio = round(ours["samples_per_s"] / row["samples_per_s"], 2)
            print(json.dumps({"metric": f"pydisco / {row['impl']} samples_per_s", "ratio": ratio}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
