"""What API and MCP clients (agents) see of the app: tool names, progress in words, errors in
sentences, and results they can read without parsing HTML.

Gradio 6.31 (gradio/mcp.py) names an MCP tool after its function's `__name__`, not its
`api_name`; reports every generator step as "Processing" with a step count and no total, and a
queue estimate as a raw float; answers an error that carries no message as "Error!" (or the
"Error: " title before our sentence); rejects a non-URL image with its own technical text; and
hands a multi-output tool called without a progress token one text item holding the tuple's
repr. `tool()` gives a handler its tool name; `StageReport` turns studio events into
`gr.Progress` updates (which gradio_client's status updates carry too), a film's a shot at a
time (`film_stage`); `adopt()` makes the app's MCP server an `AgentMCPServer`, which renders
those updates, errors and results, says in each tool's description how its file is given (an
address this app returned is read from its disk: event_inputs.py), and asks the app's own
checks before the MCP package's schema check words a refusal its own way.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import html.parser
import inspect
import json
import logging
import re
from dataclasses import dataclass
from typing import Any, Callable

import gradio as gr
from gradio_client import handle_file

from urllib.parse import unquote

from skyreels_demo.web.door import REFUSED_HEADER
from skyreels_demo.images import MAX_BYTES as MAX_IMAGE_BYTES
from skyreels_demo.studio.visitors import CALLER_HEADER, LOCAL, seal

from skyreels_demo.studio.events import (
    Done,
    Downloading,
    Event,
    InLine,
    Prepared,
    Processing,
    Queued,
    Submitted,
    SlowedDown,
    Uploading,
)

log = logging.getLogger(__name__)

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
# When a failure carries no sentence of ours (it should not happen): never a bare "Error!".
NO_SENTENCE = "The app could not finish this call; the reason is in its log. Try again in a minute."
# gradio_client's words for an error whose message the app hid (show_error=False).
_HIDDEN_ERROR = "has not enabled verbose error reporting"


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


# --- progress in words ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    """One progress report: the stage in words and how far the run is (0..1)."""

    fraction: float
    text: str


def stage_of(event: Event) -> Stage | None:
    """What an agent is told of a studio event; None for one it need not hear of."""
    if isinstance(event, InLine):
        return Stage(0.0, f"Waiting in line: {event.message}")
    if isinstance(event, SlowedDown):
        return Stage(0.15, event.message)
    if isinstance(event, Prepared):
        if event.image is None:
            return Stage(0.05, "Using the image address as given")
        return Stage(0.05, f"Prepared the image: {event.image.width}×{event.image.height}")
    if isinstance(event, Uploading):
        return Stage(0.1, f"Uploading the image ({event.size / 1024:.0f} KB)")
    if isinstance(event, Submitted):
        return Stage(0.15, f"Submitted task {event.task_id} (seed {event.seed})")
    if isinstance(event, Queued):
        return Stage(0.2, f"Queued at WaveSpeed: {event.waited_s:.0f} s so far")
    if isinstance(event, Processing):
        if event.typical_s > 0:
            share = min(0.97, event.processing_s / event.typical_s)
            return Stage(
                0.2 + 0.7 * share, f"Making the video: {event.processing_s:.0f} s of about {max(1, round(event.typical_s))} s"
            )
        return Stage(0.2, f"Making the video: {event.processing_s:.0f} s so far")
    if isinstance(event, Downloading):
        return Stage(0.92, "Downloading the video")
    if isinstance(event, Done):
        return Stage(1.0, f"Done: seed {event.seed}, task {event.run.task_id}")
    return None


class StageReport:
    """Tells a `gr.Progress` each stage of a run, once per change of words, never going back."""

    def __init__(self, progress: gr.Progress | None, prefix: str = "") -> None:
        self.progress = progress
        self.prefix = prefix
        self._last: tuple[float, str] | None = None

    def __call__(self, stage: Stage | None) -> None:
        if stage is None or self.progress is None:
            return
        fraction = max(stage.fraction, self._last[0] if self._last else 0.0)
        text = self.prefix + stage.text
        if self._last is not None and self._last[1] == text:
            return
        self._last = (fraction, text)
        try:
            self.progress(fraction, desc=text)
        except Exception:  # a report must never end a run
            log.debug("a progress report failed", exc_info=True)


def variations_stage(updates: dict[int, Any], count: int) -> Stage:
    """One line for several variations at once: how many are done, and the busiest one's stage."""
    finished = sum(1 for update in updates.values() if update.finished)
    fractions = []
    for number in range(1, count + 1):
        update = updates.get(number)
        if update is None:
            fractions.append(0.0)
        elif update.finished:
            fractions.append(1.0)
        else:
            stage = stage_of(update.event) if update.event is not None else None
            fractions.append(stage.fraction if stage else 0.0)
    live = [u for u in updates.values() if not u.finished and u.event is not None]
    now = stage_of(live[0].event) if live else None
    tail = f"; variation {live[0].number}: {now.text}" if now is not None else ""
    return Stage(sum(fractions) / max(1, count), f"{finished} of {count} variations finished{tail}")


def film_stage(update: Any) -> Stage | None:
    """One line for a film (films.FilmUpdate): the shot and its stage, with the film's share done.

    Each shot is one part of the film and the cut half of one, so a 3-shot film is at 2/7 when
    its second shot starts and at 6/7 while it is cut."""
    film = update.film
    shots = max(1, len(film.shots))
    total = shots + 0.5
    if update.shot is None:
        if update.video_path is not None:
            return Stage(1.0, f"The film is cut: {shots} shots in one video")
        return None
    where = f"Shot {update.shot + 1} of {shots}"
    if update.error is not None:
        return Stage(update.shot / total, f"{where}: {update.error.sentence}")
    if update.video_path is not None:
        done = update.shot + 1
        if done == shots:
            return Stage(shots / total, f"{where} saved; cutting the film: {shots} shots into one video")
        return Stage(done / total, f"{where} saved")
    stage = stage_of(update.event) if update.event is not None else None
    if stage is None:
        return None
    return Stage((update.shot + min(stage.fraction, 0.99)) / total, f"{where}: {stage.text}")


# --- plain results ----------------------------------------------------------------------------


class _Lines(html.parser.HTMLParser):
    """The text of each line of a status, one line each: the status board's stages and its place
    in line, or the paragraphs of a film's or the variations' status (status_board.status_lines)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self._item: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # The stages, and the place in line above them; a status's lines.
        if tag in ("li", "p") and self._item is None:
            self._item = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("li", "p") and self._item is not None:
            self.lines.append(" ".join(part.strip() for part in self._item if part.strip()))
            self._item = None

    def handle_data(self, data: str) -> None:
        if self._item is not None:
            self._item.append(data)


def board_as_text(board_html: str) -> str:
    """A status as plain lines ("✓ Uploaded the image (74 KB)."), for agents."""
    parser = _Lines()
    parser.feed(board_html)
    return "\n".join(parser.lines)


# --- the MCP server ---------------------------------------------------------------------------


def adopt(blocks: gr.Blocks, caller: Callable[[Any], Any] | None = None, uploads: Any = None) -> None:
    """Make the app's MCP server (made by gr.mount_gradio_app, which offers no hook for a
    subclass) an `AgentMCPServer`, and name its tools without the Space's prefix: the names
    already say whose they are, and are then the same on a laptop and on a Space.

    `caller(request)` decides who an MCP request is from (its own connection, as the page's
    caller is decided); `uploads` (the door) keeps a picture sent inline as that caller's upload.
    """
    server = getattr(blocks, "mcp_server_obj", None)
    if server is None:
        return
    server.__class__ = _agent_server_class(type(server))
    server.tool_prefix = ""
    server.tool_to_endpoint = server.get_tool_to_endpoint()
    server.skyreels_caller = caller
    server.skyreels_uploads = uploads
    _checks_before_the_schema(server)


def _checks_before_the_schema(server: Any) -> None:
    """An argument the app refuses is refused in the app's words, not the MCP package's; and a
    call the door refused for its size is answered with the door's sentence.

    The MCP server checks a call's arguments against the tool's schema before the tool runs
    ("Input validation error: -7 is less than the minimum of -1"). The schemas state the ranges
    (a seed from -1 to 2147483647, a count from 2 to 4), so each argument whose component can
    say why it refuses a value (`refusal(value)`: the seed box, the count) is asked first, and its
    sentence is the tool's error, as /generate's would be."""
    from mcp import types

    lowlevel = server.mcp_server
    checked = lowlevel.request_handlers.get(types.CallToolRequest)
    if checked is None:
        return

    async def handler(request: Any) -> Any:
        # A call the door refused for its size (door._mcp_refused): its sentence is the answer.
        refused = getattr(lowlevel.request_context.request, "headers", {}).get(REFUSED_HEADER)
        if refused:
            return lowlevel._make_error_result(unquote(refused))
        sentence = _argument_refusal(server, request.params.name, request.params.arguments or {})
        if sentence is not None:
            return lowlevel._make_error_result(sentence)
        return await checked(request)

    lowlevel.request_handlers[types.CallToolRequest] = handler


def _argument_refusal(server: Any, tool_name: str, arguments: dict[str, Any]) -> str | None:
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


@functools.lru_cache(maxsize=None)
def _agent_server_class(base: type) -> type:
    """The agent-facing subclass of Gradio's MCP server class (imported only when MCP is on)."""

    class AgentMCPServer(base):  # type: ignore[misc, valid-type]
        """Gradio's MCP server, with progress in words, errors in sentences, results as items."""

        @property
        def _file_data_tool_description(self) -> str:
            return ""  # each tool says how its own file is given (get_fn_description)

        def get_fn_description(self, block_fn: Any, tool_name: str) -> tuple[str, dict[str, str]]:
            description, parameters = super().get_fn_description(block_fn, tool_name)
            _, files = self.get_input_schema(tool_name, parameters)
            if files and block_fn.api_description is not False:
                api_name = str(block_fn.api_name or "").strip("/")
                forms = FILE_FORMS.get(api_name, IMAGE_FORMS)
                head, returns, tail = description.partition(" Returns: ")
                description = head.rstrip() + forms + (" Returns: " + tail if returns else "")
            return description, parameters

        def get_input_schema(self, tool_name: str, parameters: dict[str, str] | None = None) -> Any:
            schema, files = super().get_input_schema(tool_name, parameters)
            # A file given as a string keeps nothing of its object form (gr.Video's FileData left
            # `"required": ["path"]` on a string, which no string satisfies).
            for position in files:
                node = _at(schema.get("properties", {}), position)
                if isinstance(node, dict) and node.get("type") == "string":
                    node.pop("required", None)
                    node.pop("title", None)
            return schema, files

        def _caller(self) -> Any:
            decide = getattr(self, "skyreels_caller", None)
            request = self.mcp_server.request_context.request
            return decide(request) if decide is not None and request is not None else None

        def _prepare_tool_call_args(self, name: str, arguments: dict[str, Any]) -> Any:
            endpoint, args, headers, block_fn = super()._prepare_tool_call_args(name, arguments)
            # Gradio calls the app's own queue over loopback for the tool: the caller it acts for
            # rides along sealed (visitors.seal), and a header of that name from the client goes.
            headers = {k: v for k, v in headers.items() if k.lower() != CALLER_HEADER}
            caller = self._caller()
            if caller is not None:
                headers[CALLER_HEADER] = seal(caller)
            return endpoint, args, headers, block_fn

        def convert_strings_to_filedata(self, value: Any, filedata_positions: list[list[str | int]]) -> Any:
            inline = {tuple(p) for p in filedata_positions if isinstance(_at(value, p), str) and _at(value, p).startswith("data:")}
            kept = {p: self._keep_inline(_at(value, list(p))) for p in inline}
            rest = [p for p in filedata_positions if tuple(p) not in inline]
            try:
                converted = super().convert_strings_to_filedata(value, rest)
            except ValueError:
                raise ValueError(
                    "The image must be an https address of the picture or a data URI "
                    "(data:image/jpeg;base64,...): a file path is not read by this server."
                ) from None
            for position, path in kept.items():
                converted = _put(converted, list(position), handle_file(str(path)))
            return converted

        def _keep_inline(self, uri: str) -> Any:
            """A picture sent inline, kept as the caller's upload: counted against their hourly
            allowance and the upload folder's budget, and swept with the other uploads (Gradio
            would write it to its temporary folder, counted by nothing and never swept)."""
            uploads = getattr(self, "skyreels_uploads", None)
            data = _inline_bytes(uri)
            caller = self._caller()
            if uploads is None:
                raise ValueError("inline pictures are not kept by this server")
            try:
                return uploads.keep_upload(caller.key if caller is not None else LOCAL, data, "image")
            except Exception as refusal:  # the door's Refusal: its sentence is the answer
                raise InlineRefused(getattr(refusal, "sentence", None) or NO_SENTENCE) from None

        @staticmethod
        def _format_progress_message(update: Any) -> str | None:
            return progress_words(update)

        async def _execute_tool_without_progress(self, job: Any) -> list[Any]:
            from gradio_client.exceptions import AppError, ValidationError

            try:
                # Awaited on the event loop, not in a worker thread: an agent's run may wait in
                # line for minutes, and a thread held meanwhile would be one the run itself, or
                # the page, needs from the app's small shared pool (server.py).
                result = await asyncio.wrap_future(job.future)
            except (AppError, ValidationError) as exc:  # a refusal by the handler, or by the door
                raise RuntimeError(_sentence(str(exc))) from None
            # One item per output, as with progress: never the repr of a tuple.
            return list(result) if isinstance(result, tuple) else [result]

        async def _execute_tool_with_progress(self, job: Any, progress_token: str | int) -> Any:
            context = self.mcp_server.request_context
            sent: tuple[float, str] | None = None
            output: Any = None
            async for update in job:
                if update.type == "status":
                    words = progress_words(update)
                    if not words or (sent is not None and sent[1] == words):
                        continue
                    fraction = progress_fraction(update)
                    last = sent[0] if sent is not None else 0.0
                    # MCP: progress only ever grows, even when the words change and it does not.
                    value = max(fraction if fraction is not None else last, min(0.999, last + 0.001))
                    await context.session.send_progress_notification(
                        progress_token=progress_token,
                        progress=value,
                        total=1.0,
                        message=words,
                        related_request_id=str(context.request_id),
                    )
                    sent = (value, words)
                elif update.type == "output" and update.final:
                    output = update.outputs
                    if not update.success:
                        raise RuntimeError(_sentence(output.get("error") or ""))
            if job.exception():
                raise RuntimeError(_sentence(str(job.exception())))
            return output["data"]

        def postprocess_output_data(self, data: Any, root_url: str) -> list[Any]:
            # A gallery as one line per video ("Seed 41 (variation 2): <url>"), any other dict
            # or list as JSON text: never a Python repr.
            data = [_as_text(item) if isinstance(item, (dict, list)) and not _is_file(item) else item for item in data]
            # The status board is HTML for the page and gradio_client (with its place in line
            # as data-queue-place); an agent reads it as plain lines.
            data = [board_as_text(item) if _is_board(item) else item for item in data]
            return super().postprocess_output_data(data, root_url)

    return AgentMCPServer


class InlineRefused(RuntimeError):
    """A picture sent inline that the app will not keep; its message is the sentence."""


def _inline_bytes(uri: str) -> bytes:
    """The bytes of a `data:...;base64,` picture, refused with a sentence past the image limit
    before it is decoded."""
    header, _, payload = uri.partition(",")
    if ";base64" not in header or not payload:
        raise InlineRefused("A data URI picture must be base64 (data:image/jpeg;base64,...).")
    if len(payload) * 3 // 4 > MAX_IMAGE_BYTES:
        raise InlineRefused(f"That picture is over {MAX_IMAGE_BYTES // (1024 * 1024)} MB: send a smaller one.")
    try:
        return base64.b64decode(payload, validate=False)
    except (binascii.Error, ValueError):
        raise InlineRefused("That data URI is not valid base64: send the picture again.") from None


def _at(value: Any, path: list[str | int]) -> Any:
    for step in path:
        try:
            value = value[step]
        except (KeyError, IndexError, TypeError):
            return None
    return value


def _put(value: Any, path: list[str | int], new: Any) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _put(copy[path[0]], path[1:], new)
    return copy


def _as_text(item: Any) -> str:
    if isinstance(item, list) and all(isinstance(entry, dict) and ("video" in entry or "image" in entry) for entry in item):
        lines = []
        for entry in item:
            media = entry.get("video") or entry.get("image") or {}
            url = media.get("url") or media.get("path") if isinstance(media, dict) else media
            lines.append(f"{entry.get('caption') or 'Video'}: {url}")
        return "\n".join(lines) or "No videos were made."
    return json.dumps(item)


def _is_board(item: Any) -> bool:
    return isinstance(item, str) and any(
        mark in item for mark in ('class="stages"', 'class="queue-place"', 'class="status-lines"')
    )


def _is_file(item: Any) -> bool:
    from gradio_client import utils as client_utils

    return client_utils.is_file_obj_with_meta(item)


def _sentence(message: str) -> str:
    """The app's sentence from an error's text, or `NO_SENTENCE` when it carries none.

    A call the door refused reaches gradio_client in Gradio's validation shape, which it words
    "1 parameter(s) failed validation:\n- prompt: <sentence>": the sentences are what is said."""
    message = (message or "").strip()
    if _VALIDATION.match(message):
        message = " ".join(line.split(": ", 1)[-1].strip() for line in message.splitlines()[1:] if line.startswith("- "))
    if not message or _HIDDEN_ERROR in message or message in {"Error", "Error!", "None"}:
        return NO_SENTENCE
    return message


_VALIDATION = re.compile(r"^\d+ parameter\(s\) failed validation:")


def progress_words(update: Any) -> str | None:
    """An update of a queued call in words: the stage the app reported, or the queue place."""
    from gradio_client.utils import Status

    if update.code in (Status.JOINING_QUEUE, Status.STARTING):
        return "Joined the app's queue"
    if update.code is Status.IN_QUEUE:
        place = (update.rank or 0) + 1
        words = f"Waiting in the app's queue: place {place} of {max(place, update.queue_size or 0)}"
        if update.eta is not None:
            words += f", about {max(1, round(update.eta))} s"
        return words
    if update.code is Status.PROGRESS:
        for unit in update.progress_data or []:
            if unit.desc:
                return str(unit.desc)
    return None  # "Processing" on every yield says nothing


def progress_fraction(update: Any) -> float | None:
    for unit in getattr(update, "progress_data", None) or []:
        if isinstance(unit.progress, (int, float)):
            return float(unit.progress)
    return None
