"""`python app.py` without paying for its imports each time: a test worker's apps start from
one warm interpreter that imported Gradio and the studio once, and forks a child per launch.

A cold `python app.py` spends about 6 s of a core importing Gradio, FastAPI and the studio
before it serves, and the suite starts some forty of them on two cores. Here the child of a
fork sets the launch's environment, working directory, stdin and log, then runs `app.py` as
`__main__`, as `python app.py` does; only the imports were done before. Everything the app
reads from its environment it reads when `main()` runs, except Gradio's GRADIO_TEMP_DIR, which
a few Gradio modules read at import (each as its DEFAULT_TEMP_DIR): the child reads it again from
the launch's environment, as a cold start would (`_read_at_import_again`).

The warm interpreter runs no thread (fork would copy a lock mid-use); it reads requests on
stdin, answers each with the child's pid on stdout, and reports each child's exit status there
too, so a test waits for a launched app's exit as it would for a `subprocess.Popen`'s.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Mapping

# --- the warm interpreter (its own process) ----------------------------------------------------


def _serve() -> None:  # pragma: no cover - runs in the warm process
    import skyreels_demo.web.page  # noqa: F401  Gradio, FastAPI, uvicorn, PIL, av and the studio

    children: set[int] = set()
    requests = sys.stdin.buffer
    while True:
        ready, _, _ = select.select([requests], [], [], 0.1 if children else None)
        for pid, status in _ended(children):
            _say({"ended": pid, "returncode": _returncode(status)})
        if not ready:
            continue
        line = requests.readline()
        if not line:  # the test worker is gone: so are its apps
            for pid in children:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            return
        launch = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _become_app(launch)  # never returns
        children.add(pid)
        _say({"started": pid})


def _ended(children: set[int]):
    for pid in list(children):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            children.discard(pid)
            yield pid, status


def _returncode(status: int) -> int:
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _say(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _become_app(launch: dict) -> None:  # pragma: no cover - runs in the forked child
    import runpy

    code = 1
    try:
        log = os.open(launch["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(null)
        os.close(log)
        os.environ.clear()
        os.environ.update(launch["env"])
        _read_at_import_again()
        os.chdir(launch["cwd"])
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        sys.argv = [launch["script"]]
        runpy.run_path(launch["script"], run_name="__main__")
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _read_at_import_again() -> None:  # pragma: no cover - runs in the forked child
    """Gradio's folder as the launch names it, where a few of its modules read it at import
    (route_utils, routes, mcp, ...: a module-level DEFAULT_TEMP_DIR, Gradio 6.31): MCP's inline
    files, for one, land where a cold `python app.py` would put them, not in the warm
    interpreter's folder."""
    folder = os.environ.get("GRADIO_TEMP_DIR")
    if not folder:
        return
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] == "gradio" and isinstance(getattr(module, "DEFAULT_TEMP_DIR", None), str):
            module.DEFAULT_TEMP_DIR = folder


# --- the test worker's side --------------------------------------------------------------------


class WarmStarter:
    """One warm interpreter for this test process, started on the first launch."""

    def __init__(self, root: Path, env: Mapping[str, str]) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.warm_start"],
            cwd=root,
            env=dict(env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self._lock = threading.Lock()  # one launch asked at a time
        self._changed = threading.Condition()
        self._started: list[int] = []
        self._returncodes: dict[int, int] = {}
        self._closed = False  # the warm interpreter is gone (its children with it)
        threading.Thread(target=self._listen, name="warm-start", daemon=True).start()

    def _listen(self) -> None:
        for line in self._process.stdout:
            message = json.loads(line)
            with self._changed:
                if "started" in message:
                    self._started.append(message["started"])
                else:
                    self._returncodes[message["ended"]] = message["returncode"]
                self._changed.notify_all()
        with self._changed:  # the warm interpreter is gone: its children were killed with it
            self._closed = True
            self._changed.notify_all()

    def launch(self, script: str, cwd: Path, env: Mapping[str, str], log: Path) -> WarmProcess:
        request = dict(script=script, cwd=str(cwd), env=dict(env), log=str(log))
        with self._lock:
            self._process.stdin.write((json.dumps(request) + "\n").encode())
            self._process.stdin.flush()
            with self._changed:
                if not self._changed.wait_for(lambda: self._started or self._closed, timeout=30):
                    raise RuntimeError("the warm interpreter did not start the app within 30 s")
                if not self._started:
                    raise RuntimeError(f"the warm interpreter exited {self._process.poll()}")
                pid = self._started.pop(0)
        return WarmProcess(self, pid, [sys.executable, script])

    def returncode(self, pid: int, timeout: float | None = 0) -> int | None:
        with self._changed:
            self._changed.wait_for(lambda: pid in self._returncodes or self._closed, timeout=timeout)
            return self._returncodes.get(pid, -signal.SIGKILL if self._closed else None)

    def close(self) -> None:
        self._process.stdin.close()
        self._process.wait(timeout=30)


class WarmProcess:
    """A launched app as the tests use a `subprocess.Popen`: pid, poll, wait, terminate, kill."""

    def __init__(self, starter: WarmStarter, pid: int, args: list[str]) -> None:
        self._starter, self.pid, self.args = starter, pid, args
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self._starter.returncode(self.pid)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self.returncode = self._starter.returncode(self.pid, timeout=timeout)
        if self.returncode is None:
            raise subprocess.TimeoutExpired(self.args, timeout)
        return self.returncode

    def send_signal(self, number: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, number)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


if __name__ == "__main__":
    _serve()
