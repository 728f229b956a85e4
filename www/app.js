// Main-thread glue: check the browser can run PyDisco, then start the Python worker that does the rest.
// Everything after this file is Python (www/worker.py, then py_browser) running off the main thread, but for the
// WebRTC connections the worker asks for (peer_links.js): they can only live on the main thread.

import "./peer_links.js";

const statusEl = document.getElementById("status");
const progressEl = document.getElementById("progress");

function progress(text) {
  progressEl.textContent = text;
}

function fail(message) {
  statusEl.dataset.state = "error";
  if (!statusEl.dataset.webgpu) statusEl.dataset.webgpu = "none";
  progressEl.textContent = message;
}

// What this browser lacks among the features PyDisco cannot work without, in plain words.
async function missingFeatures() {
  const missing = [];
  if (!("gpu" in navigator)) {
    missing.push("WebGPU (to train on this device's graphics processor)");
  } else if (!(await navigator.gpu.requestAdapter().catch(() => null))) {
    missing.push("a WebGPU adapter (WebGPU exists here but is turned off or has no usable GPU)");
  }
  if (typeof WebAssembly.Suspending !== "function") {
    missing.push("JavaScript Promise Integration, JSPI (lets Python wait for the GPU)");
  }
  if (!self.crossOriginIsolated) {
    missing.push("cross-origin isolation (the server must send COOP/COEP headers)");
  }
  return missing;
}

// uPlot (vendored at setup) draws the training charts; the Python worker drives it through window.uPlot.
function loadCharts(folder) {
  const css = document.createElement("link");
  css.rel = "stylesheet";
  css.href = `${folder}/uPlot.min.css`;
  document.head.append(css);
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = `${folder}/uPlot.iife.min.js`;
    script.onload = resolve;
    script.onerror = () => reject(new Error("the chart library did not load"));
    document.head.append(script);
  });
}

// A chart follows its box's width (a phone turned sideways, a resized window): uPlot draws in pixels.
function chartMaker() {
  const box = document.getElementById("train-charts");
  new ResizeObserver(() => {
    const width = Math.max(200, box.clientWidth);
    for (const holder of box.querySelectorAll(".chart")) {
      if (holder.chart && holder.chart.width !== width) holder.chart.setSize({ width, height: holder.chart.height });
    }
  }).observe(box);
  return (options, data, holder) => {
    holder.chart = new uPlot(options, data, holder);
    return holder.chart;
  };
}

async function boot() {
  progress("Checking browser features…");
  const [missing, runtime] = await Promise.all([
    missingFeatures(), fetch("/www/dist/runtime.json").then((r) => r.json()),
  ]);
  if (missing.length) {
    fail(
      "This browser cannot run PyDisco. It lacks:\n• " + missing.join("\n• ") +
      "\nUse a recent Chrome or Edge (version 137 or newer) on a desktop or on Android, " +
      "with hardware acceleration enabled."
    );
    return;
  }
  // The charts load while Python starts: the worker draws none before the page is built.
  const charts = loadCharts(runtime.uplot).then(() => { window.pydiscoChart = chartMaker(); });
  progress("Starting Python (Pyodide) with tinygrad and PyDisco…");
  // Everything the worker loads comes from this server: `interpreter` points at our copy of Pyodide (PyScript
  // would otherwise take it from a CDN) and `packages` are our wheels, which "passthrough" hands to Pyodide's
  // own loader (fetched while the interpreter starts) instead of micropip. They carry Pyodide's bytecode for
  // the modules the page imports (provision/bytecode.py).
  const absolute = (path) => new URL(path, location.href).href;
  const config = {
    interpreter: absolute(runtime.pyodide), packages: runtime.wheels.map(absolute), packages_cache: "passthrough",
  };
  // A handle for the console and for tests; the worker exports its API on worker.sync once it has started.
  window.pydisco = { runtime, config, worker: null };
  const script = document.createElement("script");
  script.type = "py";
  script.setAttribute("worker", "");
  script.setAttribute("name", "pydisco");
  script.src = "/www/worker.py";
  script.setAttribute("config", JSON.stringify(config));
  document.body.append(script);
  // PyScript's own bootstrap gives worker scripts the `pyscript` module (DOM access from the worker).
  await import(`${runtime.pyscript}/core.js`);
  while (!script.xworker) await new Promise((r) => setTimeout(r, 50));
  await charts;
  window.pydisco.worker = await script.xworker.ready;
}

boot().catch((e) => fail(`PyDisco failed to start: ${e?.message || e}`));
