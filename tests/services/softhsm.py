"""A private SoftHSM2 token for the tests: a real PKCS#11 token, no daemon.

The token lives in a directory of its own with its own softhsm2.conf (never /etc/softhsm or
/var/lib/softhsm). SOFTHSM2_CONF is read by the library only when it is first loaded
(C_Initialize), so `start()` sets it for the whole test process before anything loads the
module, and a test run has one token. Tests keep apart by using key label prefixes of their own.

The PINs are throw-away test values; `softhsm2-util` takes them on its command line, which is
acceptable for a test token only.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

TOKEN_LABEL = "strongroom-test"
SO_PIN = "strongroom-so-pin-8642"
USER_PIN = "strongroom-user-pin-1357"


def softhsm_module() -> str | None:
    for pattern in ("/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/*/softhsm/libsofthsm2.so"):
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    return None


def softhsm_available() -> bool:
    """softhsm2-util and the module (Debian: softhsm2), and python-pkcs11 (the `hsm` extra)."""
    return (
        shutil.which("softhsm2-util") is not None
        and softhsm_module() is not None
        and importlib.util.find_spec("pkcs11") is not None
    )


@dataclass
class SoftHsm:
    directory: Path
    module: str = ""
    token_label: str = TOKEN_LABEL

    def start(self) -> SoftHsm:
        self.module = softhsm_module() or ""
        tokens = self.directory / "tokens"
        tokens.mkdir(parents=True, mode=0o700)
        conf = self.directory / "softhsm2.conf"
        conf.write_text(
            f"directories.tokendir = {tokens}\n"
            "objectstore.backend = file\n"
            "log.level = ERROR\n"
            "slots.removable = false\n"
            "slots.mechanisms = ALL\n"
            "library.reset_on_fork = false\n"
        )
        os.environ["SOFTHSM2_CONF"] = str(conf)
        subprocess.run(
            ["softhsm2-util", "--init-token", "--free", "--label", self.token_label]
            + ["--so-pin", SO_PIN, "--pin", USER_PIN],
            check=True,
            capture_output=True,
            timeout=60,
        )
        self.pin_file = self.write_pin_file(self.directory / "user-pin", USER_PIN)
        return self

    @property
    def conf(self) -> str:
        return str(self.directory / "softhsm2.conf")

    @staticmethod
    def write_pin_file(path: Path, pin: str) -> Path:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(pin + "\n")
        return path
