"""The README's first command on a stock Debian or Ubuntu: `bash scripts/start.sh` in a fresh
clone, with `python3` on the PATH but no `python`, makes .venv, installs into it, serves the app.

Tests reach no network, so pip is told not to use an index; the packages this test runs with
stand in for a wheelhouse (the new .venv sees the machine's packages, and PYTHONPATH adds the
test interpreter's own when it runs in a virtual environment of its own).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from .conftest import ROOT, free_port, wait_for, wait_until_serving

pytestmark = pytest.mark.first_command

# What the scripts call besides Python; a stock system has these in /usr/bin, beside no `python`.
ESSENTIALS = ("bash", "sh", "dirname", "rm", "env", "id", "cat", "uname")


def fresh_clone(tmp_path: Path) -> Path:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: there is nothing to clone")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=120)
    return clone


def bin_with(tmp_path: Path, python3: str | None) -> Path:
    """A folder to be the whole PATH: the essentials, and `python3` if given, never `python`."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for tool in ESSENTIALS:
        found = shutil.which(tool)
        if found:
            (folder / tool).symlink_to(found)
    if python3 is not None:
        (folder / "python3").symlink_to(python3)
    assert shutil.which("python", path=str(folder)) is None
    return folder


def system_python() -> str:
    """The interpreter behind this one, as a machine's own python3 (not a virtual environment's)."""
    return getattr(sys, "_base_executable", None) or sys.executable


def script_env(tmp_path: Path, path: Path, **extra: str) -> dict[str, str]:
    env = {
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "PATH": str(path),
        "LANG": "C.UTF-8",
        "PIP_NO_INDEX": "1",
        "SKYREELS_DATA_DIR": str(tmp_path / "data"),
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    env.update(extra)
    return env


def start(clone: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        # Its own session, so stopping it ends exactly what this test started.
        return subprocess.Popen(
            [env["PATH"] + "/bash", "scripts/start.sh"],
            cwd=clone,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def test_start_sh_from_a_fresh_clone_with_only_python3_makes_a_venv_and_serves_the_app(tmp_path):
    clone = fresh_clone(tmp_path)
    port = free_port()
    site_dirs = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    env = script_env(
        tmp_path,
        bin_with(tmp_path, system_python()),
        GRADIO_SERVER_PORT=str(port),
        GRADIO_SERVER_NAME="127.0.0.1",
        PYTHONPATH=os.pathsep.join(sorted(site_dirs)),
    )
    url = f"http://127.0.0.1:{port}/"

    first_log = tmp_path / "first.log"
    process = start(clone, env, first_log)
    try:
        wait_until_serving(url, process, first_log, timeout=150, every=0.5)
    finally:
        stop(process)
    said = first_log.read_text()
    assert "Making a virtual environment in .venv" in said
    assert (clone / ".venv" / "bin" / "python").exists()
    # pip speaks to its log, not the terminal: one line before, one after, and where its log is.
    pip_log = clone / ".venv" / "skyreels-pip.log"
    assert f"pip's log: {pip_log}" in said and pip_log.stat().st_size > 0
    assert "Requirement already satisfied" in pip_log.read_text()
    for noise in ("Requirement already satisfied", "Collecting ", "Can't uninstall", "Successfully installed", "WARNING:"):
        assert noise not in said, noise
    assert "Installed " in said and "the next start goes straight to the app" in said
    # And one line says where to open the page and what it will make.
    [ready] = [line for line in said.splitlines() if "Running on local URL" in line]
    assert url in ready and "open it in a browser" in ready and "offline preview" in ready
    assert len(said.splitlines()) <= 6, said

    # The next run reuses it and runs no pip at all (bench/bench_startup.py times the start);
    # its "Running on" line reaches the log file while the app runs: start.sh unbuffers it.
    again_log = tmp_path / "again.log"
    process = start(clone, env, again_log)
    try:
        wait_until_serving(url, process, again_log, timeout=150, every=0.5)
        wait_for(lambda: "Running on local URL" in again_log.read_text(errors="replace"), timeout=10)
    finally:
        stop(process)
    again = again_log.read_text()
    assert "Making a virtual environment" not in again and "Installing" not in again
    assert "share=True" not in said + again


def test_a_python_too_old_is_named_in_one_sentence(tmp_path):
    clone = fresh_clone(tmp_path)
    old = tmp_path / "old-python3"
    # An interpreter that says it is 3.8: all the scripts ask a Python is its version.
    old.write_text(f"#!{shutil.which('sh')}\necho 3.8.10\n")
    old.chmod(0o755)
    path = bin_with(tmp_path, str(old))
    done = subprocess.run(
        [str(path / "bash"), "scripts/start.sh"], cwd=clone, env=script_env(tmp_path, path),
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 1
    assert "needs Python 3.10 or newer, but" in done.stderr and "is 3.8.10" in done.stderr
    assert not (clone / ".venv").exists()


def test_no_python_at_all_is_named_in_one_sentence(tmp_path):
    clone = fresh_clone(tmp_path)
    path = bin_with(tmp_path, None)
    done = subprocess.run(
        [str(path / "bash"), "scripts/start.sh"], cwd=clone, env=script_env(tmp_path, path),
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 1
    assert "neither python3 nor python was found" in done.stderr


def test_a_failed_install_names_pips_log_and_its_last_lines(tmp_path):
    clone = fresh_clone(tmp_path)
    # Requirements no index can give: tests reach no network (pip is told to use no index), and
    # this .venv is not shown the packages this test runs with.
    path = bin_with(tmp_path, system_python())
    done = subprocess.run(
        [str(path / "bash"), "scripts/start.sh"], cwd=clone, env=script_env(tmp_path, path),
        capture_output=True, text=True, timeout=300,
    )
    pip_log = clone / ".venv" / "skyreels-pip.log"
    assert done.returncode == 1
    assert f"pip could not install the packages in requirements.txt. Its log is {pip_log}" in done.stderr
    assert "No matching distribution found" in done.stderr  # its last lines say what was missing
    assert "No matching distribution found" in pip_log.read_text()
    assert "Running on local URL" not in done.stdout + done.stderr
