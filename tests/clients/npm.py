"""Pinned npm packages for the client tests, installed once into tests/.npm (git-ignored).

The registry is reached at install time only; the installed CLIs then run offline against
fake upstreams on 127.0.0.1. A test that needs one skips, with the reason, when npm is missing.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

import pytest

NPM_DIR = Path(__file__).resolve().parent.parent / ".npm"


def install(package: str, version: str) -> Path:
    """`package@version` installed under tests/.npm; returns its node_modules/.bin directory."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip(f"npm is not installed: cannot install {package}@{version}")
    prefix = NPM_DIR / f"{package.lstrip('@').replace('/', '+')}@{version}"
    done = prefix / ".installed"
    if not done.exists():
        NPM_DIR.mkdir(parents=True, exist_ok=True)
        with open(NPM_DIR / ".lock", "w") as lock:  # parallel test processes install once
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not done.exists():
                prefix.mkdir(parents=True, exist_ok=True)
                env = {
                    **os.environ,
                    "npm_config_cache": str(NPM_DIR / "cache"),
                    "npm_config_update_notifier": "false",
                }
                subprocess.run(
                    [
                        npm,
                        "install",
                        "--no-audit",
                        "--no-fund",
                        "--no-save",
                        "--prefix",
                        str(prefix),
                        f"{package}@{version}",
                    ],
                    check=True,
                    env=env,
                    timeout=900,
                    capture_output=True,
                )
                done.touch()
    return prefix / "node_modules" / ".bin"
