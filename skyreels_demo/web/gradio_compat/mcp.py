"""The app's MCP server: Gradio's own, its class swapped for a subclass that speaks to agents.

Read from Gradio 6.31.0, gradio/mcp.py (class GradioMCPServer), and mcp 1.x,
mcp/server/lowlevel/server.py (Server.request_handlers, Server._make_error_result).
gr.mount_gradio_app makes the server (blocks.mcp_server_obj) and offers no hook for a
subclass, so `adopt` swaps the instance's class; each override below names the method of
GradioMCPServer it replaces. What the overrides say is the app's (agents.py, agent_results.py,
agent_progress.py): only the reaching in is here. tests/test_gradio_compat.py checks that each
overridden method still exists with the signature read.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any, Callable
from urllib.parse import unquote

from gradio_client import handle_file

from skyreels_demo.studio.visitors import CALLER_HEADER, LOCAL, seal
from skyreels_demo.web import agent_results
from skyreels_demo.web.agent_progress import progress_fraction, progress_words
from skyreels_demo.web.mcp_door import REFUSED_HEADER

# GradioMCPServer's methods the subclass overrides (6.31.0), for the test that they still exist.
OVERRIDDEN = (
    "_file_data_tool_description", "get_fn_description", "get_input_schema", "_prepare_tool_call_args",
    "convert_strings_to_filedata", "_format_progress_message", "_execute_tool_without_progress",
    "_execute_tool_with_progress", "postprocess_output_data",
)


def adopt_server(
    blocks: Any, describe: Callable[[str, Any, bool], str], caller: Callable[[Any], Any] | None, uploads: Any,
    refusal: Callable[[Any, str, dict[str, Any]], str | None],
) -> Any:
    """Make the app's MCP server an agent-facing one, tools named without the Space's prefix;
    None when MCP is off. `describe(description, block_fn, has_files)` words a tool's
    description; `caller(request)` decides who a call is from; `uploads` keeps inline pictures;
    `refusal(server, tool, arguments)` is the app's own check before the schema's."""
    server = getattr(blocks, "mcp_server_obj", None)  # set by gr.mount_gradio_app (routes.py)
    if server is None:
        return None
    server.__class__ = _agent_server_class(type(server))
    server.tool_prefix = ""  # GradioMCPServer.__init__: the Space's name + "_" on a Space
    server.tool_to_endpoint = server.get_tool_to_endpoint()
    server.skyreels_describe = describe
    server.skyreels_caller = caller
    server.skyreels_uploads = uploads
    _checks_before_the_schema(server, refusal)
    return server


def _checks_before_the_schema(server: Any, refusal: Callable[[Any, str, dict[str, Any]], str | None]) -> None:
    """The MCP package checks a call's arguments against the tool's schema before the tool runs
    and words a refusal its own way ("-7 is less than the minimum of -1"): the app's checks go
    first, and a call the door refused for its size (mcp_door.py) is answered with the door's
    sentence. mcp/server/lowlevel/server.py: request_handlers[CallToolRequest] is the handler
    `call_tool()` registered; `_make_error_result(text)` is the tool error it answers with."""
    from mcp import types

    lowlevel = server.mcp_server
    checked = lowlevel.request_handlers.get(types.CallToolRequest)
    if checked is None:
        return

    async def handler(request: Any) -> Any:
        refused = getattr(lowlevel.request_context.request, "headers", {}).get(REFUSED_HEADER)
        if refused:
            return lowlevel._make_error_result(unquote(refused))
        sentence = refusal(server, request.params.name, request.params.arguments or {})
        if sentence is not None:
            return lowlevel._make_error_result(sentence)
        return await checked(request)

    lowlevel.request_handlers[types.CallToolRequest] = handler


@functools.lru_cache(maxsize=None)
def _agent_server_class(base: type) -> type:
    """The agent-facing subclass of Gradio's MCP server class (imported only when MCP is on)."""
    return type("AgentMCPServer", (AgentServing, base), {})


class AgentServing:
    """Gradio's MCP server, with progress in words, errors in sentences, results as items: the
    overrides of GradioMCPServer's methods, mixed in before it (each calls `super()`)."""

    @property
    def _file_data_tool_description(self) -> str:
        return ""  # each tool says how its own file is given (get_fn_description)

    def get_fn_description(self, block_fn: Any, tool_name: str) -> tuple[str, dict[str, str]]:
        description, parameters = super().get_fn_description(block_fn, tool_name)
        _, files = self.get_input_schema(tool_name, parameters)
        return self.skyreels_describe(description, block_fn, bool(files)), parameters

    def get_input_schema(self, tool_name: str, parameters: dict[str, str] | None = None) -> Any:
        schema, files = super().get_input_schema(tool_name, parameters)
        return agent_results.files_as_strings(schema, files), files

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
        inline, rest = agent_results.inline_positions(value, filedata_positions)
        kept = {p: self._keep_inline(agent_results.at(value, list(p))) for p in inline}
        try:
            converted = super().convert_strings_to_filedata(value, rest)
        except ValueError:
            raise ValueError(agent_results.NOT_A_PATH) from None
        for position, path in kept.items():
            converted = agent_results.put(converted, list(position), handle_file(str(path)))
        return converted

    def _keep_inline(self, uri: str) -> Any:
        caller = self._caller()
        return agent_results.keep_inline(getattr(self, "skyreels_uploads", None), caller.key if caller else LOCAL, uri)

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
            raise RuntimeError(agent_results.sentence(str(exc))) from None
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
                last = sent[0] if sent is not None else 0.0
                fraction = progress_fraction(update)
                # MCP: progress only ever grows, even when the words change and it does not.
                value = max(fraction if fraction is not None else last, min(0.999, last + 0.001))
                await context.session.send_progress_notification(
                    progress_token=progress_token, progress=value, total=1.0, message=words,
                    related_request_id=str(context.request_id),
                )
                sent = (value, words)
            elif update.type == "output" and update.final:
                output = update.outputs
                if not update.success:
                    raise RuntimeError(agent_results.sentence(output.get("error") or ""))
        if job.exception():
            raise RuntimeError(agent_results.sentence(str(job.exception())))
        return output["data"]

    def postprocess_output_data(self, data: Any, root_url: str) -> list[Any]:
        return super().postprocess_output_data(agent_results.plain_outputs(data), root_url)

