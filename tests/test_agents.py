"""Agents and API clients nobody on the project wrote, against the launched app: the official
`mcp` package over streamable HTTP, gradio_client, and the API page's own snippets' shape."""

from __future__ import annotations

import asyncio
import base64
import re
import shutil
import subprocess
import time

import jsonschema
import pytest
import requests
from gradio_client import Client, handle_file
from mcp import ClientSession

try:
    from mcp.client.streamable_http import streamable_http_client as connect
except ImportError:  # mcp before 1.24 named it this way
    from mcp.client.streamable_http import streamablehttp_client as connect

from .conftest import ASTRONAUT, ROOT, LaunchedApp, jpeg_bytes, photo

TOOLS = {
    "skyreels_generate_video", "skyreels_make_variations", "skyreels_suggest_prompt",
    "skyreels_continue_shot", "skyreels_make_film",
}
PRIVATE = "That image address points inside a private network, so it was not fetched: upload the file instead."


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    data = tmp_path_factory.mktemp("agents-app")
    with LaunchedApp(data, GRADIO_MCP_SERVER="True", SKYREELS_PREVIEW_TIMING="1,3") as launched:
        yield launched


@pytest.fixture(scope="module")
def picture() -> str:
    """A small picture as an agent would send it: a data URI."""
    return "data:image/jpeg;base64," + base64.b64encode(jpeg_bytes(photo(480, 320))).decode()


def with_session(app, work):
    async def run():
        async with connect(app.url + "gradio_api/mcp/") as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return await work(session)

    return asyncio.run(run())


def texts(result) -> list[str]:
    return [item.text for item in result.content if item.type == "text"]


# --- MCP ---------------------------------------------------------------------------------------


def test_tools_are_named_for_what_they_do_and_say_how_to_give_the_image(app):
    async def work(session):
        return {tool.name: tool for tool in (await session.list_tools()).tools}

    tools = with_session(app, work)
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert "https address" in tool.description and "data URI" in tool.description
        assert "upload_file_to_gradio" not in tool.description  # a tool this server does not have
    count = tools["skyreels_make_variations"].inputSchema["properties"]["count"]
    assert count["type"] == "integer" and (count["minimum"], count["maximum"]) == (2, 4)
    assert tools["skyreels_suggest_prompt"].inputSchema["required"] == ["image"]


def test_every_documented_call_fits_its_tools_input_schema(app, picture):
    documented = {
        "skyreels_generate_video": [
            {"prompt": "a woman smiles", "image": "https://example.com/photo.jpg", "seed": 7},
            {"prompt": "a woman smiles", "image": picture, "seed": -1, "fit": "pad", "fps_prefix": False},
        ],
        "skyreels_make_variations": [
            {"prompt": "a woman smiles", "image": picture, "count": 2},
            {"prompt": "a woman smiles", "image": picture, "count": 4, "seed": 40},
        ],
        "skyreels_suggest_prompt": [{"image": picture}, {"image": picture, "idea": "she laughs"}],
    }

    async def work(session):
        return {tool.name: tool.inputSchema for tool in (await session.list_tools()).tools}

    schemas = with_session(app, work)
    for name, calls in documented.items():
        for arguments in calls:
            jsonschema.validate(arguments, schemas[name])
    # What the old schema made clients send is refused by the schema, as it should be.
    for wrong in ({"count": "3"}, {"count": 5}, {"count": 1}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({"prompt": "x", "image": picture, **wrong}, schemas["skyreels_make_variations"])


def test_variations_with_an_integer_count_make_two_videos(app, picture):
    async def work(session):
        return await session.call_tool("skyreels_make_variations", {"prompt": "a cat blinks", "image": picture, "count": 2, "seed": 40})

    result = with_session(app, work)
    assert not result.isError, texts(result)
    grid, lines = texts(result)
    videos = re.findall(r"^Seed (\d+) \(variation \d\): (http\S+\.mp4)$", grid, flags=re.M)
    assert sorted(int(seed) for seed, _ in videos) == [40, 41]
    for _, url in videos:
        assert requests.get(url, timeout=10).headers["content-type"].startswith("video/")
    assert lines.count("✓") == 2


def test_suggest_prompt_needs_only_an_image(app, picture):
    async def work(session):
        return await session.call_tool("skyreels_suggest_prompt", {"image": picture})

    result = with_session(app, work)
    assert not result.isError, texts(result)
    [prompt] = texts(result)
    assert "offline preview" in prompt.lower() and len(prompt) > 40


def test_generate_reports_its_stages_in_words_and_ends_with_plain_fields(app, picture):
    notes: list[tuple[float, float | None, str | None]] = []

    async def work(session):
        async def progress(value, total, message):
            notes.append((value, total, message))

        return await session.call_tool(
            "skyreels_generate_video", {"prompt": "a woman smiles", "image": picture, "seed": 7}, progress_callback=progress
        )

    result = with_session(app, work)
    assert not result.isError, texts(result)
    messages = [message for _, _, message in notes]
    stages = {m.split(":")[0] for m in messages if m}
    assert len(stages) >= 3, messages  # e.g. uploading, making the video, downloading
    assert any(m.startswith("Making the video: ") and " of about " in m for m in messages), messages
    assert "Downloading the video" in messages and "Processing" not in messages
    assert not any(re.search(r"\d\.\d{3,}", m or "") for m in messages), messages  # no raw floats
    values = [value for value, _, _ in notes]
    assert values == sorted(values) and len(set(values)) == len(values) and values[-1] == 1.0
    assert {total for _, total, _ in notes} == {1.0}
    # One item per output, no HTML, no Python repr: the stages, the video's URL, the summary.
    stages_text, video_url, summary = texts(result)
    assert "<" not in stages_text and "Submitted with seed 7" in stages_text and "Done" in stages_text
    assert video_url.startswith(app.url) and video_url.endswith(".mp4")
    assert "Seed 7" in summary and re.search(r"task `[0-9a-f]{32}`", summary)


def test_an_image_address_inside_a_private_network_comes_back_as_the_apps_sentence(app):
    async def work(session):
        arguments = {"prompt": "a woman smiles", "image": "http://10.0.0.1/photo.jpg"}
        quiet = await session.call_tool("skyreels_generate_video", arguments)

        async def progress(value, total, message):
            pass

        followed = await session.call_tool("skyreels_generate_video", arguments, progress_callback=progress)
        path = await session.call_tool("skyreels_suggest_prompt", {"image": "/etc/passwd"})
        return quiet, followed, path

    quiet, followed, path = with_session(app, work)
    assert quiet.isError and texts(quiet) == [PRIVATE]
    assert followed.isError and texts(followed) == [PRIVATE]  # not "Error: ...", never "Error!"
    assert path.isError and texts(path)[0].startswith("The image must be an https address")


# --- gradio_client and the API page ------------------------------------------------------------


def test_gradio_client_can_leave_out_the_idea(app):
    text = Client(app.url, verbose=False).predict(handle_file(ASTRONAUT), api_name="/suggest_prompt")
    assert "offline preview" in text.lower()


@pytest.mark.parametrize("count", [2, "2"])  # an integer; and a client that learnt the old schema
def test_gradio_client_asks_for_variations_with_a_count(app, count):
    grid, lines = Client(app.url, verbose=False).predict(
        "a woman smiles", handle_file(ASTRONAUT), count=count, seed=60, api_name="/generate_variations"
    )
    assert sorted(int(item["caption"].split()[1]) for item in grid) == [60, 61]


def test_a_count_out_of_range_is_refused_with_a_sentence(app):
    with pytest.raises(Exception, match="Ask for 2 to 4 variations"):
        Client(app.url, verbose=False).predict(
            "a woman smiles", handle_file(ASTRONAUT), count=9, api_name="/generate_variations"
        )


def test_gradio_client_status_updates_carry_the_stage_in_words(app):
    job = Client(app.url, verbose=False).submit("a man waves", handle_file(ASTRONAUT), 3, api_name="/generate")
    seen: list[str] = []
    while not job.done():
        for unit in job.status().progress_data or []:
            if unit.desc and (not seen or seen[-1] != unit.desc):
                seen.append(unit.desc)
        time.sleep(0.05)
    assert job.outputs()
    assert any(s.startswith("Making the video") for s in seen), seen
    assert len({s.split(":")[0] for s in seen}) >= 2, seen


def api_info(app) -> dict:
    return requests.get(app.url + "gradio_api/info", timeout=10).json()["named_endpoints"]


def test_every_public_parameter_and_output_has_a_meaningful_name(app):
    endpoints = api_info(app)
    assert {"/generate", "/generate_variations", "/suggest_prompt"} <= set(endpoints)
    unnamed = re.compile(r"^(parameter|value|param)_\d+$")
    for name, endpoint in endpoints.items():
        for parameter in endpoint["parameters"]:
            assert not unnamed.match(parameter["parameter_name"]), (name, parameter)
            assert not unnamed.match(parameter["label"]), (name, parameter)
        for output in endpoint["returns"]:
            assert not unnamed.match(output["label"]), (name, output)


def snippet_arguments(endpoint: dict) -> dict:
    """The keyword arguments the API page's Python snippet writes for an endpoint: each
    parameter's default, or its example where it has none (the page's example image is on the
    web, out of reach here: a local picture stands in for it, wrapped as the snippet wraps it)."""
    arguments = {}
    for parameter in endpoint["parameters"]:
        value = parameter["parameter_default"] if parameter["parameter_has_default"] else parameter["example_input"]
        if parameter["component"] == "Image":
            value = handle_file(ASTRONAUT)
        arguments[parameter["parameter_name"]] = value
    return arguments


@pytest.mark.parametrize("api_name", ["/generate_variations", "/suggest_prompt", "/generate"])
def test_the_api_pages_python_snippet_runs_as_shown(app, api_name):
    endpoint = api_info(app)[api_name]
    arguments = snippet_arguments(endpoint)
    if api_name == "/generate_variations":
        assert arguments["count"] == 3 and isinstance(arguments["count"], int)
    result = Client(app.url, verbose=False).predict(**arguments, api_name=api_name)
    assert result


# --- Node, with @gradio/client (optional) -------------------------------------------------------

NODE_CALL = """
const { Client, handle_file } = await import(process.env.GRADIO_CLIENT);
const fs = await import("node:fs");
const app = await Client.connect(process.env.APP_URL);
const image = new Blob([fs.readFileSync(process.env.IMAGE)]);
const prompt = await app.predict("/suggest_prompt", { image: handle_file(image) });
const grid = await app.predict("/generate_variations", { prompt: "a cat", image: handle_file(image), count: 2 });
console.log(JSON.stringify({ prompt: prompt.data[0], videos: grid.data[0].length }));
process.exit(0);
"""


def test_the_js_client_calls_with_an_integer_count_and_no_idea(app, tmp_path):
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("Node and npm are not installed here (Debian: apt-get install nodejs npm)")
    folder = ROOT / ".gradio" / "node-client"
    module = folder / "node_modules" / "@gradio" / "client" / "dist" / "index.js"
    if not module.exists():
        folder.mkdir(parents=True, exist_ok=True)
        installed = subprocess.run(
            [npm, "install", "--silent", "--prefix", str(folder), "@gradio/client@1"], capture_output=True, text=True, timeout=300
        )
        if installed.returncode != 0 or not module.exists():
            pytest.skip(f"@gradio/client could not be installed: {installed.stderr[-300:]}")
    script = tmp_path / "call.mjs"
    script.write_text(NODE_CALL)
    done = subprocess.run(
        [node, str(script)],
        env={"PATH": "/usr/bin:/bin", "APP_URL": app.url, "IMAGE": ASTRONAUT, "GRADIO_CLIENT": module.as_uri()},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert '"videos":2' in done.stdout and "offline preview" in done.stdout.lower()
