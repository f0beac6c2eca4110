"""The page's own input boxes, where Gradio's defaults would do the wrong thing with what arrives.

An image box that hands its handler the file or address as sent (the studio, not Gradio, opens
and fetches pictures), and a key box whose value Gradio's session state never keeps. Separate
from the page's layout because they are components with Gradio's data model underneath them,
not arrangement.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
from gradio.data_classes import GradioRootModel
from pydantic import model_serializer

from skyreels_demo import images
from skyreels_demo.images import remote as remote_images


class ImageInput(gr.Image):
    """An image box whose handler gets the uploaded file as it is.

    gr.Image would open (and sometimes convert) the file itself and answer a broken one with its
    own technical message; here `images.prepare` decides what is a picture, and says why not.

    An API or MCP client may name the picture by its web address instead. Gradio would download
    that itself before `preprocess` (Blocks.preprocess_data -> processing_utils.
    async_move_files_to_cache -> this block's async_move_resource_to_block_cache ->
    async_ssrf_protected_download), with no size cap, before any cap is checked and on the pool
    the server and Gradio share; so the address is kept as it is there, and handed to the
    handler as a `remote_images.ImageAddress`, which the studio fetches by our rules only once
    the run's caps have let it go (Studio.fetch_admitted), on a small pool of its own.
    """

    is_template = True  # drawn by gr.Image's own front end

    async def async_move_resource_to_block_cache(self, url_or_file_path: str | Path | None) -> str | None:
        if images.is_remote_url(url_or_file_path):
            return str(url_or_file_path)  # not downloaded by Gradio: the studio fetches it, admitted
        return await super().async_move_resource_to_block_cache(url_or_file_path)

    def move_resource_to_block_cache(self, url_or_file_path: str | Path | None) -> str | None:
        if images.is_remote_url(url_or_file_path):
            return str(url_or_file_path)  # an example's address: the browser shows it
        return super().move_resource_to_block_cache(url_or_file_path)

    def preprocess(self, payload):
        if payload is not None and images.is_remote_url(payload.path):
            return remote_images.ImageAddress(payload.path)  # nothing fetched here
        if payload is None or (payload.url and payload.url.startswith("data:")):
            return super().preprocess(payload)
        return str(payload.path)


class _KeyPayload(GradioRootModel):
    """What a key box sends: the handler gets it (`root`); what Gradio keeps of it is nothing."""

    root: Any = None

    @model_serializer
    def _kept(self) -> None:
        return None

    def __repr__(self) -> str:
        return "_KeyPayload(hidden)"

    __str__ = __repr__


class KeyBox(gr.Textbox):
    """A password box for a WaveSpeed key that Gradio's session state never keeps.

    Gradio keeps the last value of every input of every event in the page's session
    (Blocks.preprocess_data -> SessionState._update_value_in_config, until the session is
    evicted, never when a page closes): a pasted key sat there after its run, once per event that
    took it. Gradio keeps what the box's `data_model` dumps, and hands `preprocess` the model
    itself: this box's model dumps to nothing, so the handler gets the key and the session keeps
    None. Its API, its page and its limits are a gr.Textbox's.
    """

    is_template = True  # drawn by gr.Textbox's own front end
    data_model = _KeyPayload

    def preprocess(self, payload: Any) -> str | None:
        value = payload.root if isinstance(payload, _KeyPayload) else payload
        return value if isinstance(value, str) else None
