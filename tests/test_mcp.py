"""The launched app as an MCP server (GRADIO_MCP_SERVER=True), listed by a real MCP client."""

from __future__ import annotations

import asyncio

import pytest
from mcp import ClientSession

try:
    from mcp.client.streamable_http import streamable_http_client as connect
except ImportError:  # mcp before 1.24 named it this way
    from mcp.client.streamable_http import streamablehttp_client as connect

from .conftest import LaunchedApp


@pytest.fixture(scope="module")
def mcp_app(tmp_path_factory):
    with LaunchedApp(tmp_path_factory.mktemp("mcp-app"), GRADIO_MCP_SERVER="True") as launched:
        yield launched


async def list_tools(url: str):
    async with connect(url) as (read, write, _):
        async with ClientSession(read, write) as session:
            await session.initialize()
            return (await session.list_tools()).tools


def test_generate_is_an_mcp_tool_with_its_inputs_described(mcp_app):
    tools = {tool.name: tool for tool in asyncio.run(list_tools(mcp_app.url + "gradio_api/mcp/"))}

    # Named for what they do (agents.py); the API names stay /generate etc.
    assert "skyreels_generate_video" in tools, sorted(tools)
    generate = tools["skyreels_generate_video"]
    assert "SkyReels V1 video" in generate.description
    inputs = generate.inputSchema["properties"]
    assert "who is in the picture" in inputs["prompt"]["description"]
    assert "still image" in inputs["image"]["description"]
    assert "random seed" in inputs["seed"]["description"] and inputs["seed"]["type"] == "integer"
    assert {"prompt", "image"} <= set(generate.inputSchema.get("required", []))
    # The page's own handlers (preparing a preview frame, History) are not tools.
    assert not {"show_prepared", "history", "pick", "stop"} & set(tools)
