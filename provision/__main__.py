"""`python -m provision`: fetch the pinned browser runtime and build our wheel (`make setup` runs it, then
`python -m tasks.prepare` for the example data)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from provision import browser_wheel, bytecode, runtime
from provision.download import DownloadError

ROOT = Path(__file__).resolve().parent.parent


def _version() -> str:
    scope: dict[str, str] = {}
    exec((ROOT / "py_shared" / "version.py").read_text(), scope)
    return scope["__version__"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache" / "downloads")
    args = parser.parse_args()
    vendor, dist = ROOT / "www" / "vendor", ROOT / "www" / "dist"
    try:
        pyodide = runtime.install_pyodide(args.cache, vendor)
        pyscript = runtime.install_pyscript(args.cache, vendor)
        wheels = runtime.install_wheels(args.cache, vendor)
        tokenizer = runtime.install_gpt2_tokenizer(args.cache, vendor)
        charts = runtime.install_uplot(args.cache, vendor)
    except DownloadError as e:
        print(f"setup failed: {e}", file=sys.stderr)
        return 1
    ours = browser_wheel.build(ROOT, dist, _version())
    compiled = bytecode.compile_wheels(wheels, ours, pyodide, dist / "compiled")
    manifest = {
        "version": _version(),
        "pyodide": "/" + str((pyodide / "pyodide.mjs").relative_to(ROOT)),
        "pyscript": "/" + str(pyscript.relative_to(ROOT)),
        "wheels": ["/" + str(w.relative_to(ROOT)) for w in compiled],
        "gpt2_tokenizer": "/" + str(tokenizer.relative_to(ROOT)),
        "uplot": "/" + str(charts.relative_to(ROOT)),
    }
    (dist / "runtime.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"browser runtime ready: Pyodide in {pyodide.relative_to(ROOT)}, {len(manifest['wheels'])} wheels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
