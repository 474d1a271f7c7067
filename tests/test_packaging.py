"""The built wheel works in a fresh virtual environment, catalog included.

The fresh venv gets zoo from the wheel (``--no-deps``) and borrows the test venv's
site-packages for torch and friends, so torch is never installed twice.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

from tests.conftest import ROOT


def test_wheel_installs_and_lists_in_a_fresh_venv(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(ROOT)],
                   check=True, capture_output=True)
    wheel = next(dist.glob("zoo_registry-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    # the test venv's packages come after the fresh venv's own: the wheel's zoo wins
    (site / "borrow_test_env.pth").write_text(f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", str(wheel)],
                   check=True, capture_output=True)
    where = subprocess.run([str(py), "-c", "import zoo, zoo.registry as r; print(zoo.__file__); print(r.plugins()[0].path)"],
                           check=True, capture_output=True, text=True, cwd=tmp_path).stdout.split()
    assert where[0].startswith(str(venv)) and where[1].startswith(str(venv)), where
    assert where[1].endswith("zoo/registry.toml")
    listed = subprocess.run([str(venv / "bin" / "zoo"), "list", "--json"], check=True, capture_output=True, text=True, cwd=tmp_path)
    names = {row["name"] for row in json.loads(listed.stdout)}
    assert {"digitnet", "alexnet", "folder", "timm/*"} <= names
    info = subprocess.run([str(venv / "bin" / "zoo"), "info", "digitnet", "--json"], check=True, capture_output=True, text=True, cwd=tmp_path)
    assert json.loads(info.stdout)["parameters"] == 21690
