"""Pyodide's own bytecode for the modules the page imports, added to the browser's wheels at setup.

Pyodide compiles every module it imports from a wheel's sources, on every page load: tinygrad's imports took
0.9 s from source against 0.3 s from bytecode (measured in Node). Setup runs the same Pyodide under Node,
imports what the page imports (and runs a small training step, so that what tinygrad imports lazily loads
too), and adds each loaded module's bytecode to its wheel as an unchecked-hash `.pyc` (PEP 552) beside the
source. Pyodide then loads it without reading the source; any other Python ignores it (its cache tag differs).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

from provision.browser_wheel import record_lines, write_zip
from provision.runtime import STAMP, stamped

# Runs under Node: argv is Pyodide's folder and the job folder (mounted at /job).
DRIVER = """
import { pathToFileURL } from "node:url";
const [indexURL, job] = process.argv.slice(2);
const { loadPyodide } = await import(pathToFileURL(indexURL + "/pyodide.mjs").href);
const py = await loadPyodide({ indexURL: indexURL + "/" });
py.FS.mkdirTree("/job");
py.FS.mount(py.FS.filesystems.NODEFS, { root: job }, "/job");
try {
  py.runPython(py.FS.readFile("/job/compile.py", { encoding: "utf8" }));
} catch (e) {
  console.error(String(e.message || e).slice(-3000));  // the Python traceback, not Pyodide's minified source
  process.exit(1);
}
"""

# Runs inside Pyodide: unpacks the wheels, imports, then writes the bytecode of every module of the wheels in
# "whole" and of every module loaded from the others to /job/out/<wheel>/.
COMPILE = """
import importlib, json, os, pkgutil, py_compile, sys, zipfile
job = json.load(open("/job/job.json"))
roots = {}
for wheel in job["wheels"]:
    root = f"/site/{wheel}"
    zipfile.ZipFile(f"/job/{wheel}").extractall(root)
    sys.path.insert(0, root)
    roots[root] = wheel
os.environ.update({"DEV": "PYTHON", "PARALLEL": "0"})  # a pure-Python device: no GPU here
for package in job["imports"]:
    for info in pkgutil.walk_packages(importlib.import_module(package).__path__, package + "."):
        importlib.import_module(info.name)
exec(job["workload"], {})
sources = [m.__file__ for m in list(sys.modules.values()) if (getattr(m, "__file__", None) or "").endswith(".py")]
for root, wheel in roots.items():
    if wheel in job["whole"]:
        sources += [os.path.join(d, f) for d, _, files in os.walk(root) for f in files if f.endswith(".py")]
for source in sorted(set(sources)):
    root = next((r for r in roots if source.startswith(r + "/")), None)
    if root:
        target = f"/job/out/{roots[root]}/" + os.path.relpath(importlib.util.cache_from_source(source), root)
        py_compile.compile(source, target, dfile=os.path.relpath(source, root), doraise=True,
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
"""

# What the page imports beyond the packages walked: tinygrad's WebGPU renderer, and one training step on
# tinygrad's Python device, which imports the scheduler, the code generator and the JIT as the GPU would.
WORKLOAD = """
import segno, tinygrad.renderer.wgsl, tinygrad.nn.state
segno.make("https://example.org/#/task/x").svg_data_uri()
from tinygrad import Context, Tensor, TinyJit, nn
layer = nn.Linear(3, 2)
opt = nn.optim.Adam(nn.state.get_parameters(layer))
@TinyJit
def step(x, y):
    with Context(TRAINING=1):
        opt.zero_grad()
        loss = layer(x).sparse_categorical_crossentropy(y).backward()
        opt.step()
        return loss.realize()
for _ in range(3):
    step(Tensor.ones(4, 3), Tensor([0, 1, 0, 1])).item()
"""


def _key(wheels: list[Path], pyodide: Path) -> str:
    digest = hashlib.sha256((DRIVER + COMPILE + WORKLOAD).encode())
    for path in [*wheels, pyodide / STAMP]:  # Pyodide's stamp holds its pinned sha256
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _with_bytecode(wheel: Path, compiled: Path, target: Path) -> None:
    """Copy `wheel` to `target` with the files under `compiled` added, and listed in its RECORD."""
    added = {str(p.relative_to(compiled)): p.read_bytes() for p in sorted(compiled.rglob("*.pyc"))}
    with zipfile.ZipFile(wheel) as src:
        files = {info.filename: src.read(info) for info in src.infolist()}
    record = next(name for name in files if name.endswith(".dist-info/RECORD"))
    files[record] += record_lines(added).encode()
    write_zip(target, {**files, **added})


def compile_wheels(wheels: list[Path], ours: Path, pyodide: Path, dest: Path) -> list[Path]:
    """Copies of `wheels` and `ours` in `dest`, with Pyodide's bytecode for every module of `ours` and for each
    module of the others that py_shared's modules and WORKLOAD import.

    py_browser's modules need the page (PyScript's DOM) to import: they are compiled without being run.
    Rebuilt only when a wheel or Pyodide changed; needs Node (`npm` brings it).
    """
    wheels = [*wheels, ours]
    targets = [dest / w.name for w in wheels]
    key = _key(wheels, pyodide)
    if stamped(dest, key) and all(t.exists() for t in targets):
        return targets
    with tempfile.TemporaryDirectory(prefix="pydisco-bytecode-") as tmp:
        job = Path(tmp)
        for wheel in wheels:
            shutil.copyfile(wheel, job / wheel.name)
        spec = {
            "wheels": [w.name for w in wheels],
            "whole": [ours.name],
            "imports": ["py_shared"],
            "workload": WORKLOAD,
        }
        (job / "job.json").write_text(json.dumps(spec))
        (job / "compile.py").write_text(COMPILE)
        (job / "driver.mjs").write_text(DRIVER)
        run = subprocess.run(["node", str(job / "driver.mjs"), str(pyodide), str(job)], capture_output=True, text=True)
        if run.returncode != 0:
            raise RuntimeError(f"compiling the browser's bytecode under Node failed:\n{run.stderr[-3000:]}")
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        for wheel, target in zip(wheels, targets, strict=True):
            _with_bytecode(wheel, job / "out" / wheel.name, target)
    (dest / STAMP).write_text(key)
    return targets
