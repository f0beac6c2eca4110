"""Each reach into Gradio's internals (skyreels_demo/web/gradio_compat.py) still does what it was
read to do: these fail loudly when an upgrade of Gradio moves one."""

from __future__ import annotations

import gradio as gr
import pytest
from fastapi import FastAPI
from gradio.context import LocalContext
from gradio.exceptions import InvalidPathError
from gradio.processing_utils import _check_allowed

from skyreels_demo.web import gradio_compat


def test_gradio_is_the_version_the_reaches_were_read_from():
    assert gr.__version__ == gradio_compat.GRADIO_VERSION


def test_a_mounted_app_checks_named_files_only_once_guarded():
    with gr.Blocks() as demo:
        gr.Image(type="filepath")
    gr.mount_gradio_app(FastAPI(), demo, path="/")
    token = LocalContext.blocks.set(demo)
    try:
        _check_allowed("/etc/hostname", True)  # mounted, unguarded: Gradio checks nothing
        gradio_compat.guard_file_inputs(demo)
        with pytest.raises(InvalidPathError):
            _check_allowed("/etc/hostname", True)
    finally:
        LocalContext.blocks.reset(token)
