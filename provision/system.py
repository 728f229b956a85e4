"""`python3 -m provision.system NEED...`: install the Debian packages behind these needs, or say which.

Uses apt-get as root, `sudo -n apt-get` otherwise; without either it names the missing packages and the
command that installs them, and exits non-zero.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys

# need -> (how to tell it is present, Debian package)
NEEDS: dict[str, tuple[str, str]] = {
    "venv": ("module:ensurepip", "python3-venv"),
    "clang": ("binary:clang", "clang"),  # tinygrad's CPU device compiles kernels with it
    "npm": ("binary:npm", "npm"),  # fetches Pyodide and PyScript at setup
    "chromium": ("file:/usr/lib/chromium/chromium", "chromium"),
    "chromedriver": ("binary:chromedriver", "chromium-driver"),
}


def present(check: str) -> bool:
    """Whether a NEEDS check ("binary:x", "module:x" or "file:/path") holds on this machine."""
    kind, _, what = check.partition(":")
    if kind == "binary":
        return shutil.which(what) is not None
    if kind == "module":
        return importlib.util.find_spec(what) is not None
    return os.path.exists(what)


def apt_prefix() -> list[str] | None:
    """How to run apt-get here: directly as root, through `sudo -n` otherwise, or None when neither works."""
    if os.geteuid() == 0:
        return []
    if shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0:
        return ["sudo", "-n"]
    return None


def main(needs: list[str]) -> int:
    unknown = [n for n in needs if n not in NEEDS]
    if unknown:
        print(f"provision.system: unknown need(s) {unknown}; known: {sorted(NEEDS)}", file=sys.stderr)
        return 2
    packages = [NEEDS[n][1] for n in needs if not present(NEEDS[n][0])]
    if not packages:
        return 0
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
    prefix = apt_prefix()
    if prefix is None or not shutil.which("apt-get"):
        print(
            f"setup needs these Debian packages: {' '.join(packages)}\n"
            f"Install them as root with:  apt-get install -y --no-install-recommends {' '.join(packages)}",
            file=sys.stderr,
        )
        return 1
    print(f"installing Debian packages: {' '.join(packages)}", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run([*prefix, *install], env=env).returncode != 0:
        # a fresh machine has empty package lists
        subprocess.run([*prefix, "apt-get", "update", "-q"], env=env, check=False)
        if subprocess.run([*prefix, *install], env=env).returncode != 0:
            print(f"could not install {' '.join(packages)} with apt-get (see above)", file=sys.stderr)
            return 1
    still_missing = [n for n in needs if not present(NEEDS[n][0])]
    if still_missing:
        print(f"installed, but still missing: {still_missing}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
