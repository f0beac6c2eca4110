"""The environment read once, with a sentence that names the variable when a value is wrong."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from skyreels_demo.config import Settings
from skyreels_demo.models import BRONZE

from .conftest import ROOT, clean_env, run_cli


@pytest.mark.parametrize(
    "name, raw, sentence",
    [
        ("SKYREELS_SHARED", "ture", "SKYREELS_SHARED must be a flag: 1, true, yes or on (or 0, false, no, off), not 'ture'."),
        ("SKYREELS_SHARING", "nope", "SKYREELS_SHARING must be a flag: 1, true, yes or on (or 0, false, no, off), not 'nope'."),
        ("SKYREELS_KEEP_DAYS", "a week", "SKYREELS_KEEP_DAYS must be a number, not 'a week'."),
        ("SKYREELS_MAX_CONCURRENT_TASKS", "2.5", "SKYREELS_MAX_CONCURRENT_TASKS must be a whole number, not '2.5'."),
        ("SKYREELS_QUEUE_SIZE", "-1", "SKYREELS_QUEUE_SIZE must be 0 or more, not '-1'."),
        ("SKYREELS_IMAGE_TRANSPORT", "ftp", "SKYREELS_IMAGE_TRANSPORT must be one of auto, upload or inline, not 'ftp'."),
        ("SKYREELS_TIER", "platinum", "SKYREELS_TIER must be one of Bronze, Silver, Gold, Ultra, not 'platinum'."),
        ("SKYREELS_PREVIEW_TIMING", "fast", "SKYREELS_PREVIEW_TIMING must be two numbers of seconds, queue,processing (like 1,3), not 'fast'."),
    ],
)
def test_a_wrong_value_is_refused_with_a_sentence_naming_the_variable(name, raw, sentence):
    with pytest.raises(ValueError) as refused:
        Settings.from_env({name: raw})
    assert str(refused.value) == sentence


def test_unset_and_blank_variables_keep_the_defaults_and_flags_read_their_words():
    blank = Settings.from_env({"SKYREELS_SHARED": "  ", "SKYREELS_KEEP_DAYS": ""})
    assert blank == Settings.from_env({}) and blank.shared is False and blank.keep_days == 30.0
    assert blank.max_concurrent_tasks == BRONZE.tasks_at_once and blank.submits_per_minute == BRONZE.submits_per_minute
    for word, value in [("1", True), ("yes", True), ("On", True), ("0", False), ("off", False), ("FALSE", False)]:
        assert Settings.from_env({"SKYREELS_SHARED": word}).shared is value
    gold = Settings.from_env({"SKYREELS_TIER": "Gold"})
    assert (gold.max_concurrent_tasks, gold.submits_per_minute) == (3000, 3000)


def test_the_key_is_read_but_never_shown():
    settings = Settings.from_env({"WAVESPEED_API_KEY": "  made-up-owner-key  "})
    assert settings.api_key == "made-up-owner-key" and "made-up-owner-key" not in repr(settings)


def test_the_command_line_and_the_app_refuse_a_typo_with_the_sentence_and_start_nothing(tmp_path):
    env = clean_env(SKYREELS_DATA_DIR=str(tmp_path), SKYREELS_SHARED="ture")
    cli = run_cli("runs", env=env)
    assert cli.returncode == 2 and "SKYREELS_SHARED must be a flag" in cli.stderr and "Traceback" not in cli.stderr
    # -X importtime lists every module imported: the refusal comes before Gradio's (seconds of it).
    app = subprocess.run([sys.executable, "-X", "importtime", "app.py"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert app.returncode == 2 and "SKYREELS_SHARED must be a flag" in app.stderr and "Traceback" not in app.stderr
    assert "import time:" in app.stderr and not re.search(r"\| +gradio\b", app.stderr)
