"""Agents and API clients nobody on the project wrote, against the launched app: the official
`mcp` package over streamable HTTP, gradio_client, `@gradio/client` on Node, and the API page's
own snippets' shape. Each is taken a second step too: the address one tool returned is the next
tool's input (a chain), a film reports its progress, and a refusal is the app's sentence."""

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

from .conftest import ASTRONAUT, ROOT, LaunchedApp, jpeg_bytes, open_store, photo

TOOLS = {
    "skyreels_generate_video", "skyreels_make_variations", "skyreels_suggest_prompt",
    "skyreels_continue_shot", "skyreels_make_film",
}
PRIVATE = "That image address points inside a private network, so it was not fetched: upload the file instead."


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    data = tmp_path_factory.mktemp("agents-app")
    # No test here looks inside a video: each run gets the preview's stock clip, not a render.
    with LaunchedApp(data, GRADIO_MCP_SERVER="True", SKYREELS_PREVIEW_TIMING="0.1,0.3", SKYREELS_PREVIEW_RENDERS="0") as launched:
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
    for name, tool in tools.items():
        if name == "skyreels_continue_shot":  # a video, not a picture: an address this app returned
            assert "address a tool of this app returned" in tool.description and "the image" not in tool.description
        else:
            assert "https address" in tool.description and "data URI" in tool.description
            assert "address this app gave out" in tool.description and "8 MB" in tool.description
        assert "/gradio_api/upload" in tool.description  # how to send a larger file first
        assert "upload_file_to_gradio" not in tool.description  # a tool this server does not have
        assert "HTML" not in tool.description.split("Returns:")[0]
    count = tools["skyreels_make_variations"].inputSchema["properties"]["count"]
    assert count["type"] == "integer" and (count["minimum"], count["maximum"]) == (2, 4)
    assert tools["skyreels_suggest_prompt"].inputSchema["required"] == ["image"]
    # Every seed states the range the app takes; a video given as a string asks nothing of an object.
    for name, tool in tools.items():
        seed = tool.inputSchema["properties"].get("seed")
        if seed is not None:
            assert (seed["type"], seed["minimum"], seed["maximum"]) == ("integer", -1, 2147483647), name
    video = tools["skyreels_continue_shot"].inputSchema["properties"]["video"]
    assert video["type"] == "string" and "required" not in video
    assert "2 to 6 lines" in tools["skyreels_make_film"].inputSchema["properties"]["shots"]["description"]


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


def submitted(app) -> int:
    """Runs the app has sent to its backend (each one a submit), from its own run store."""
    return sum(1 for run in open_store(app.data_dir).recent(limit=1000) if run.task_id)


def test_the_video_generate_returned_is_continued_by_its_address(app, picture):
    async def work(session):
        made = await session.call_tool("skyreels_generate_video", {"prompt": "a woman smiles", "image": picture, "seed": 7})
        assert not made.isError, texts(made)
        _, video_url, _ = texts(made)
        before = submitted(app)
        continued = await session.call_tool(
            "skyreels_continue_shot", {"video": video_url, "prompt": "she turns to the window", "seed": 8}
        )
        return video_url, before, continued

    video_url, before, continued = with_session(app, work)
    assert not continued.isError, texts(continued)
    stages, next_url, summary = texts(continued)
    assert next_url != video_url and next_url.endswith(".mp4") and "Seed 8" in summary
    assert requests.get(next_url, timeout=10).headers["content-type"].startswith("video/")
    assert submitted(app) == before + 1  # one more submit, for the new shot
    store = open_store(app.data_dir)
    first = store.by_task(video_url.rsplit("/", 1)[-1].removesuffix(".mp4"))
    second = store.by_task(next_url.rsplit("/", 1)[-1].removesuffix(".mp4"))
    assert second.continued_from == first.id  # read from the app's own disk, known as its run


def test_a_film_of_three_shots_reports_each_shots_stages(app, picture):
    notes: list[tuple[float, str]] = []

    async def work(session):
        async def progress(value, total, message):
            notes.append((value, message or ""))

        return await session.call_tool(
            "skyreels_make_film", {"image": picture, "shots": "she smiles\nshe turns\nshe waves", "seed": 3},
            progress_callback=progress,
        )

    result = with_session(app, work)
    assert not result.isError, texts(result)
    film_url, lines = texts(result)
    assert film_url.endswith(".mp4") and "3 shots · cut" in lines
    messages = [message for _, message in notes]
    for number in (1, 2, 3):
        said = [m for m in messages if m.startswith(f"Shot {number} of 3")]
        assert len(said) >= 2, messages  # more than one stage of every shot, in words
        assert any(m.startswith(f"Shot {number} of 3 saved") for m in said), messages
        assert any(": Making the video" in m or ": Submitted task" in m or ": Uploading" in m for m in said), messages
    assert any("cutting the film" in m for m in messages) and messages[-1] == "The film is cut: 3 shots in one video"
    values = [value for value, _ in notes]
    assert values == sorted(values) and values[-1] == 1.0
    # Shot 2 starts past a third of the film: the fraction is the film's, not the shot's.
    start_of_two = next(value for value, message in notes if message.startswith("Shot 2 of 3"))
    assert 0.28 < start_of_two < 0.5


@pytest.mark.parametrize("seed", [-7, 2**40])
def test_a_film_with_a_seed_out_of_range_is_refused_in_the_apps_words_before_any_submit(app, picture, seed):
    before = submitted(app), len(open_store(app.data_dir).films(limit=1000))

    async def work(session):
        return await session.call_tool("skyreels_make_film", {"image": picture, "shots": "one\ntwo", "seed": seed})

    result = with_session(app, work)
    assert result.isError and texts(result) == [f"The seed must be from -1 to 2147483647; {seed} is out of range."]

    async def count(session):
        return await session.call_tool("skyreels_make_variations", {"prompt": "a cat", "image": picture, "count": 9})

    refused = with_session(app, count)  # the count too: the app's words, not the schema check's
    assert refused.isError and texts(refused) == ["Ask for 2 to 4 variations, as a whole number (not '9')."]
    assert (submitted(app), len(open_store(app.data_dir).films(limit=1000))) == before


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

    async def every_update() -> list[str]:
        # Every update the client received, in order (polling job.status() samples and can miss
        # a stage this quick backend passes through in a blink).
        said: list[str] = []
        async for update in job:
            for unit in getattr(update, "progress_data", None) or []:
                if unit.desc and (not said or said[-1] != unit.desc):
                    said.append(unit.desc)
        return said

    seen = asyncio.run(every_update())
    assert job.outputs()
    assert seen[-1].startswith("Done: made in"), seen
    uploading = next(i for i, s in enumerate(seen) if s.startswith("Uploading the image"))
    # After the upload, the task's wait in words: Gradio sends the latest progress at its own
    # pace, so which of "Submitted task" and "Making the video" arrive depends on the timing.
    assert any(s.startswith(("Submitted task", "Making the video")) for s in seen[uploading + 1:-1]), seen
    assert not any("<" in s for s in seen), seen  # words, not the board's HTML


def test_gradio_client_continues_the_video_generate_returned_by_its_address(app):
    client = Client(app.url, verbose=False, download_files=False)  # addresses, as an agent keeps them
    _, video, _ = client.predict("a woman smiles", handle_file(ASTRONAUT), 7, api_name="/generate")
    before = submitted(app)
    _, continued, summary = client.predict(handle_file(video["url"]), "she turns", 8, api_name="/continue_shot")
    assert continued["url"] != video["url"] and continued["url"].endswith(".mp4") and "Seed 8" in summary
    assert submitted(app) == before + 1


def test_gradio_client_hears_each_shot_of_a_film_and_a_bad_seed_in_the_apps_words(app):
    client = Client(app.url, verbose=False)
    job = client.submit(handle_file(ASTRONAUT), "she smiles\nshe waves", 5, api_name="/make_film")
    seen: list[str] = []
    while not job.done():
        for unit in job.status().progress_data or []:
            if unit.desc and (not seen or seen[-1] != unit.desc):
                seen.append(unit.desc)
        time.sleep(0.05)
    assert job.outputs()
    assert any(s.startswith("Shot 1 of 2") for s in seen) and any(s.startswith("Shot 2 of 2") for s in seen), seen
    with pytest.raises(Exception, match=re.escape("The seed must be from -1 to 2147483647; -7 is out of range.")):
        client.predict(handle_file(ASTRONAUT), "one\ntwo", -7, api_name="/make_film")


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
const app = await Client.connect(process.env.APP_URL, { events: ["data", "status"] });  // status: progress
const image = new Blob([fs.readFileSync(process.env.IMAGE)]);
const prompt = await app.predict("/suggest_prompt", { image: handle_file(image) });
const grid = await app.predict("/generate_variations", { prompt: "a cat", image: handle_file(image), count: 2 });
// A chain: the address of a video the app returned is the next call's video.
const made = await app.predict("/generate", { prompt: "a cat", image: handle_file(image), seed: 7 });
const next = await app.predict("/continue_shot", { video: handle_file(made.data[1].url), prompt: "it yawns", seed: 8 });
// Refusals are the app's sentences: a film's seed out of range, a prompt over its limit.
const refusals = [];
for (const call of [["/make_film", { image: handle_file(image), shots: "a\\nb", seed: -7 }],
                    ["/generate", { prompt: "x".repeat(2001), image: handle_file(image), seed: 7 }]]) {
  try { await app.predict(...call); refusals.push("made"); } catch (error) { refusals.push(error.message); }
}
// A film's progress, as status events carrying each shot's stage in words.
const stages = [];
for await (const message of app.submit("/make_film", { image: handle_file(image), shots: "a cat\\nit yawns", seed: 5 })) {
  if (message.type === "status" && message.progress_data) {
    for (const unit of message.progress_data) if (unit.desc) stages.push(unit.desc);
  }
  if (message.type === "status" && (message.stage === "complete" || message.stage === "error")) {
    // Said and done here: leaving the loop early waits on the client's iterator to close.
    console.log(JSON.stringify({ prompt: prompt.data[0], videos: grid.data[0].length, first: made.data[1].url, next: next.data[1].url, stages, refusals }));
    process.exit(message.stage === "complete" ? 0 : 1);
  }
}
process.exit(1);
"""


def test_the_js_client_calls_with_an_integer_count_and_no_idea_and_chains_a_video(app, tmp_path):
    node = shutil.which("node")
    module = ROOT / ".gradio" / "node-client" / "node_modules" / "@gradio" / "client" / "dist" / "index.js"
    assert node and module.exists(), "Node or @gradio/client is missing: bash scripts/test.sh installs both."
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
    import json

    said = json.loads(done.stdout.strip().splitlines()[-1])
    assert said["next"].endswith(".mp4") and said["next"] != said["first"]
    assert any(stage.startswith("Shot 2 of 2") for stage in said["stages"]), said["stages"]
    assert said["refusals"] == ["The seed must be from -1 to 2147483647; -7 is out of range.",
                                "That text is too long: at most 2000 characters."], said["refusals"]
    assert requests.get(said["next"], timeout=10).headers["content-type"].startswith("video/")


# --- a shared deployment: refusals for size are the app's sentences ------------------------------


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    root = tmp_path_factory.mktemp("agents-shared")
    with LaunchedApp(
        root / "data",
        GRADIO_MCP_SERVER="True",
        SKYREELS_SHARED="1",
        SKYREELS_PROXY_HOPS="0",
        SKYREELS_PREVIEW_TIMING="0.1,0.3",
        SKYREELS_PREVIEW_RENDERS="0",
        GRADIO_TEMP_DIR=str(root / "gradio-cache"),
    ) as launched:
        yield launched


TOO_LONG = "That text is too long: at most 2000 characters."


def test_a_prompt_over_its_limit_is_the_apps_sentence_through_mcp_and_gradio_client(shared, picture):
    async def work(session):
        refused = await session.call_tool("skyreels_generate_video", {"prompt": "x" * 2001, "image": picture})

        async def progress(value, total, message):
            pass

        followed = await session.call_tool(
            "skyreels_generate_video", {"prompt": "x" * 2001, "image": picture}, progress_callback=progress
        )
        fine = await session.call_tool("skyreels_suggest_prompt", {"image": picture})  # the session goes on
        return refused, followed, fine

    refused, followed, fine = with_session(shared, work)
    assert refused.isError and texts(refused) == [TOO_LONG]
    assert followed.isError and texts(followed) == [TOO_LONG]
    assert not fine.isError
    with pytest.raises(Exception, match=re.escape(TOO_LONG)) as raised:
        Client(shared.url, verbose=False).predict("x" * 2001, handle_file(ASTRONAUT), 7, api_name="/generate")
    assert "413" not in str(raised.value) and "queue/join" not in str(raised.value)
    # 2,000 characters is the limit, and is taken.
    assert Client(shared.url, verbose=False).predict("x" * 2000, handle_file(ASTRONAUT), 7, api_name="/generate")[1]


def over_sse(app, work):
    """The same as `with_session`, over MCP's SSE transport."""
    from mcp.client.sse import sse_client

    async def run():
        async with sse_client(app.url + "gradio_api/mcp/sse") as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return await work(session)

    return asyncio.run(run())


@pytest.mark.parametrize("transport", [with_session, over_sse], ids=["streamable-http", "sse"])
def test_a_phone_photo_inline_fits_and_one_too_large_is_a_tool_error_the_session_survives(shared, transport):
    # A phone-sized photo: 1.6 MB as JPEG, 2.1 MB as a data URI (the body limit elsewhere is 1 MB).
    phone = "data:image/jpeg;base64," + base64.b64encode(jpeg_bytes(photo(2400, 1800, seed=3))).decode()
    assert len(phone) > 1_100_000
    huge = "data:image/jpeg;base64," + "A" * (9 * 1024 * 1024)

    async def work(session):
        made = await session.call_tool("skyreels_suggest_prompt", {"image": phone})
        refused = await session.call_tool("skyreels_suggest_prompt", {"image": huge})
        after = await session.call_tool("skyreels_suggest_prompt", {"image": phone})
        return made, refused, after

    made, refused, after = transport(shared, work)
    assert not made.isError, texts(made)
    assert refused.isError
    [sentence] = texts(refused)
    assert "may carry at most 8 MB" in sentence and "/gradio_api/upload" in sentence
    assert not after.isError, texts(after)


def test_a_picture_uploaded_first_is_given_by_the_address_the_app_answers(shared):
    with open(ASTRONAUT, "rb") as file:
        [path] = requests.post(shared.url + "gradio_api/upload", files={"files": ("astronaut.png", file)}, timeout=30).json()
    address = f"{shared.url}gradio_api/file={path}"

    async def work(session):
        return await session.call_tool("skyreels_suggest_prompt", {"image": address})

    result = with_session(shared, work)
    assert not result.isError, texts(result)
    # An address of the app naming a file it does not hold is refused unopened.
    async def outside(session):
        return await session.call_tool("skyreels_suggest_prompt", {"image": f"{shared.url}gradio_api/file=/etc/hostname"})

    refused = with_session(shared, outside)
    assert refused.isError and texts(refused)[0].startswith("That file was not uploaded to this app")


def test_a_video_is_continued_only_by_whoever_made_it(shared, picture):
    from .test_closed_by_default import call_tool_from

    made = call_tool_from(shared, "127.0.0.2", "skyreels_generate_video", {"prompt": "a cat", "image": picture})
    assert not made.isError, texts(made)
    video_url = texts(made)[1]
    theirs = call_tool_from(shared, "127.0.0.3", "skyreels_continue_shot", {"video": video_url, "prompt": "it yawns"})
    assert theirs.isError and texts(theirs) == ["That take is not in this browser's History: pick one of your own takes."]
    mine = call_tool_from(shared, "127.0.0.2", "skyreels_continue_shot", {"video": video_url, "prompt": "it yawns"})
    assert not mine.isError, texts(mine)


# --- the README's API section, run as written ----------------------------------------------------


def readme_snippets() -> list[str]:
    """The Python snippets of the README's "API and MCP" section, in order."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## API and MCP\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_readmes_api_snippets_run_as_written(app, tmp_path):
    """Each snippet runs as a reader would run it, in a folder holding their photo.jpg; only the
    app's address is this test's (the README's is the default port, http://127.0.0.1:7860)."""
    import subprocess
    import sys

    snippets = readme_snippets()
    assert len(snippets) == 2  # gradio_client, then the official mcp package
    (tmp_path / "photo.jpg").write_bytes(jpeg_bytes(photo(800, 600)))
    said = []
    for number, code in enumerate(snippets):
        assert "http://127.0.0.1:7860" in code
        script = tmp_path / f"snippet{number}.py"
        script.write_text(code.replace("http://127.0.0.1:7860", app.url.rstrip("/")))
        done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stderr[-3000:]
        said.append(done.stdout)
    for out in said:
        addresses = [line for line in out.splitlines() if line.startswith(app.url)]
        assert len(addresses) == 3 and len(set(addresses)) == 3, out  # a video, its continuation, a film
        for address in addresses:
            assert requests.get(address, timeout=10).headers["content-type"].startswith("video/")
    assert re.search(r"^\d+% Shot 2 of 2", said[1], flags=re.M) and "100% The film is cut" in said[1]
