"""What API and MCP clients (agents) see of the app: tool names, progress in words, errors in
sentences, and results they can read without parsing HTML.

Gradio 6.31 (gradio/mcp.py) names an MCP tool after its function's `__name__`, not its
`api_name`; reports every generator step as "Processing" with a step count and no total, and a
queue estimate as a raw float; answers an error that carries no message as "Error!" (or the
"Error: " title before our sentence); rejects a non-URL image with its own technical text; and
hands a multi-output tool called without a progress token one text item holding the tuple's
repr. `tool()` gives a handler its tool name; `adopt()` makes the app's MCP server an
agent-facing one (gradio_compat/mcp.py, the only place that reaches into it), which says in
each tool's description how its file is given (an address this app returned is read from its
disk: event_inputs.py) and asks the app's own checks before the MCP package's schema check
words a refusal its own way. Progress in words is agent_progress.py; what a tool answers with,
agent_results.py.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

import gradio as gr

from skyreels_demo.web import gradio_compat

# The MCP tool of each public endpoint: the API names (/generate, ...) stay as they are, and
# the tools say what they do and whose they are, for an agent with several servers.
TOOL_NAMES = {
    "generate": "skyreels_generate_video",
    "generate_variations": "skyreels_make_variations",
    "suggest_prompt": "skyreels_suggest_prompt",
    "continue_shot": "skyreels_continue_shot",
    "make_film": "skyreels_make_film",
}
# How a file reaches a tool: said in each tool's description, where Gradio would point the
# agent at an `upload_file_to_gradio` tool this server does not have. An address this app gave
# out is read from its disk (event_inputs.py), never downloaded again.
UPLOAD_FIRST = (
    'To send a larger file, POST it as the multipart field "files" to <app>/gradio_api/upload and give '
    "<app>/gradio_api/file=<the path it answers>."
)
IMAGE_FORMS = (
    " Give the image as an https address of the picture, as an address this app gave out "
    "(<app>/gradio_api/file=..., such as a picture uploaded to it), or as a data URI "
    "(data:image/jpeg;base64,...; on a shared app one call carries at most 8 MB, a picture of about 6 MB). "
    + UPLOAD_FIRST
)
VIDEO_FORMS = (
    " Give the video as the address a tool of this app returned for it (the video of skyreels_generate_video, "
    "skyreels_make_variations or skyreels_continue_shot, or the film of skyreels_make_film; your own only), "
    'or upload an MP4 first: POST it as the multipart field "files" to <app>/gradio_api/upload and give '
    "<app>/gradio_api/file=<the path it answers>."
)
FILE_FORMS = {"continue_shot": VIDEO_FORMS}


def tool(fn: Callable[..., Any], api_name: str) -> Callable[..., Any]:
    """`fn` under the MCP tool name for `api_name`, with its signature and docstring.

    Gradio reads the signature (through `__wrapped__`) for the parameters it fills in itself and
    for the API's parameter names, and streams only when the function is a generator function.
    """
    name = TOOL_NAMES[api_name]
    if inspect.isasyncgenfunction(fn):

        @functools.wraps(fn)
        async def named(*args: Any, **kwargs: Any) -> Any:
            async for outputs in fn(*args, **kwargs):
                yield outputs

    elif inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def named(*args: Any, **kwargs: Any) -> Any:
            yield from fn(*args, **kwargs)

    else:

        @functools.wraps(fn)
        def named(*args: Any, **kwargs: Any) -> Any:
            return fn(*args, **kwargs)

    named.__name__ = named.__qualname__ = name
    return named


class VariationCount(gr.Radio):
    """How many variations: a radio of 2, 3, 4 on the page, an integer from 2 to 4 to clients.

    gr.Radio describes any choices as a string enum ({"type": "string", "enum": [2, 3, 4]}),
    which no value satisfies; this one says "integer, 2 to 4", so gradio_client, the JS client
    and MCP schemas all take `count: 3`. A client that learnt the old schema and sends "3" is
    understood; anything else is refused with a sentence.
    """

    is_template = True  # drawn by gr.Radio's own front end
    # No __init__ of its own: Gradio builds a component's config from its __init__'s signature.

    @property
    def low(self) -> int:
        return min(value for _, value in self.choices)

    @property
    def high(self) -> int:
        return max(value for _, value in self.choices)

    def api_info(self) -> dict[str, Any]:
        return {"type": "integer", "minimum": self.low, "maximum": self.high}

    def example_payload(self) -> Any:
        return self.value if isinstance(self.value, int) else self.low

    def example_value(self) -> Any:
        return self.example_payload()

    def refusal(self, value: Any) -> str | None:
        """The sentence for a count out of range (before an MCP schema check words it), or None."""
        try:
            self.preprocess(value)
        except gr.Error as exc:
            return str(exc.message)
        return None

    def preprocess(self, payload: Any) -> int | None:
        if payload is None:
            return None
        value = payload
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not self.low <= value <= self.high:
            raise gr.Error(
                f"Ask for {self.low} to {self.high} variations, as a whole number (not {str(payload)[:20]!r}).",
                print_exception=False,
            )
        return value


def adopt(blocks: gr.Blocks, caller: Callable[[Any], Any] | None = None, uploads: Any = None) -> None:
    """Make the app's MCP server (made by gr.mount_gradio_app) speak to agents, and name its tools
    without the Space's prefix: the names already say whose they are, and are then the same on a
    laptop and on a Space.

    `caller(request)` decides who an MCP request is from (its own connection, as the page's
    caller is decided); `uploads` (the door) keeps a picture sent inline as that caller's upload.
    """
    gradio_compat.adopt_mcp_server(blocks, describe=describe, caller=caller, uploads=uploads, refusal=argument_refusal)


def describe(description: str, block_fn: Any, has_files: bool) -> str:
    """A tool's description, saying how its file is given where it takes one."""
    if not has_files or block_fn.api_description is False:
        return description
    forms = FILE_FORMS.get(str(block_fn.api_name or "").strip("/"), IMAGE_FORMS)
    head, returns, tail = description.partition(" Returns: ")
    return head.rstrip() + forms + (" Returns: " + tail if returns else "")


def argument_refusal(server: Any, tool_name: str, arguments: dict[str, Any]) -> str | None:
    """The app's sentence for an argument it refuses, before the MCP package's schema check.

    The schemas state the ranges (a seed from -1 to 2147483647, a count from 2 to 4), so each
    argument whose component can say why it refuses a value (`refusal(value)`: the seed box, the
    count) is asked first, and its sentence is the tool's error, as /generate's would be."""
    endpoint = server.tool_to_endpoint.get(tool_name)
    block_fn = server.get_block_fn_from_endpoint_name(endpoint) if endpoint else None
    if block_fn is None:
        return None
    try:
        parameters = server.api_info["named_endpoints"][endpoint]["parameters"]
    except KeyError:
        return None
    components = [c for c in block_fn.inputs if not getattr(c, "skip_api", False) and not getattr(c, "stateful", False)]
    for parameter, component in zip(parameters, components):
        name = parameter.get("parameter_name")
        if name in arguments and callable(getattr(component, "refusal", None)):
            sentence = component.refusal(arguments[name])
            if sentence:
                return sentence
    return None
