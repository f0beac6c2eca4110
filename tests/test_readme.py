"""The README as a newcomer reads it: the two commands exactly, its picture there, every link it
gives leading somewhere, and every command-line example one that runs as written: with the
project's `.venv/bin/python` (stock Debian has no `python`), naming commands and options the
command line has."""

from __future__ import annotations

import re
import shlex
import subprocess

import pytest

from skyreels_demo.cli import build_parser
from skyreels_demo.models import SKYREELS_V1

from .conftest import ROOT, clean_env

README = (ROOT / "README.md").read_text()
DEPLOYMENT = ROOT / "docs" / "deployment.md"


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    return {slug(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


def examples() -> list[list[str]]:
    return [shlex.split(re.split(r"\s+#\s", line)[0]) for line in README.splitlines() if line.startswith(".venv/bin/python -m skyreels_demo")]


def test_the_two_commands_are_there_as_they_are():
    assert "```bash\nbash scripts/start.sh\n```" in README
    assert "```bash\nbash scripts/test.sh\n```" in README
    assert README.index("bash scripts/start.sh") < README.index("## Using it") < README.index("## Deploying it")


def test_its_picture_and_every_link_lead_somewhere():
    pictures = re.findall(r"!\[[^\]]+\]\(([^)]+)\)", README)
    assert pictures and all((ROOT / path).is_file() for path in pictures)
    for text, base in ((README, ROOT), (DEPLOYMENT.read_text(), DEPLOYMENT.parent)):
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if target.startswith(("http://", "https://")):
                continue
            path, _, anchor = target.partition("#")
            file = (base / path).resolve() if path else None
            assert file is None or file.exists(), target
            if anchor:
                assert anchor in anchors(file.read_text() if file else text), target


def test_the_deployment_facts_moved_whole_to_their_own_document():
    moved = DEPLOYMENT.read_text()
    for heading in ("## Deployment: a public Space", "## A crowd on one key: the line", "## Webhooks: pushed, not polled"):
        assert heading in moved and heading not in README
    assert "SKYREELS_PROXY_HOPS" in moved and "at most 32 connections" in moved
    assert "docs/deployment.md" in README


@pytest.mark.parametrize("argv", examples(), ids=lambda argv: " ".join(argv[3:5]))
def test_each_command_line_example_is_one_the_command_line_takes(argv):
    assert argv[:3] == [".venv/bin/python", "-m", "skyreels_demo"]
    words = [w for w in argv[3:] if not (w.startswith("[") and w.endswith("]"))]
    build_parser(SKYREELS_V1).parse_args(words)  # exits (fails the test) on a command or option it lacks


def test_the_command_line_runs_with_the_projects_python():
    assert len(examples()) >= 10
    python = ROOT / ".venv" / "bin" / "python"
    if not python.exists():
        pytest.skip("no .venv here: scripts/start.sh or scripts/test.sh makes it")
    done = subprocess.run([str(python), "-m", "skyreels_demo", "--help"], cwd=ROOT, env=clean_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "generate" in done.stdout
