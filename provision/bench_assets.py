"""Reference implementations the browser benchmarks run beside PyDisco (TensorFlow.js, the engine DISCO uses).
Fetched on demand by the benchmarks, pinned and sha256-checked like the runtime; never loaded by the app."""

from __future__ import annotations

import tarfile
from pathlib import Path

from provision.artefacts import Artefact
from provision.download import fetch

TFJS_VERSION = "4.22.0"
TFJS = Artefact(
    "npm",
    f"@tensorflow/tfjs@{TFJS_VERSION}",
    f"tensorflow-tfjs-{TFJS_VERSION}.tgz",
    "56505c191e24116787477b3bb5bb1cc0cf1c2bdce8112b9c402a8a2d31cf2f00",
)
TFJS_WEBGPU = Artefact(
    "npm",
    f"@tensorflow/tfjs-backend-webgpu@{TFJS_VERSION}",
    f"tensorflow-tfjs-backend-webgpu-{TFJS_VERSION}.tgz",
    "e60089ded350de2a7ec0b367bd44c62a516da312d69a84a3f2e1aa3bb31c97e6",
)
SCRIPTS = [(TFJS, "package/dist/tf.min.js"), (TFJS_WEBGPU, "package/dist/tf-backend-webgpu.min.js")]


def install_tfjs(cache: Path, vendor: Path) -> list[str]:
    """TF.js and its WebGPU backend under www/vendor/bench/; returns their URL paths, in load order."""
    dest = vendor / "bench" / f"tfjs-{TFJS_VERSION}"
    dest.mkdir(parents=True, exist_ok=True)
    urls = []
    for artefact, member in SCRIPTS:
        target = dest / Path(member).name
        if not target.exists():
            with tarfile.open(fetch(artefact, cache)) as tar:
                source = tar.extractfile(member)
                assert source is not None, member
                target.write_bytes(source.read())
        urls.append(f"/www/vendor/bench/tfjs-{TFJS_VERSION}/{target.name}")
    return urls
