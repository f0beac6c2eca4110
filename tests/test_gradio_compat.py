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


def test_the_mcp_servers_methods_the_app_overrides_are_still_there():
    from gradio.mcp import GradioMCPServer
    from mcp.server.lowlevel.server import Server

    from skyreels_demo.web.gradio_compat.mcp import OVERRIDDEN

    for name in OVERRIDDEN:
        assert hasattr(GradioMCPServer, name), name
    assert callable(getattr(Server, "_make_error_result", None))
    assert "request_handlers" in Server.__init__.__code__.co_names


def test_forty_threads_means_the_serving_loops_limiter_and_the_queue_takes_its_cap():
    with gr.Blocks() as demo:
        gr.Textbox()
    gradio_compat.share_threads(demo, 7)
    demo.create_limiter()
    assert demo.limiter is None  # Gradio's steps share the loop's default limiter
    assert demo._queue.max_thread_count == 7


def test_an_idle_queue_is_paced_by_the_attributes_its_loops_read():
    from gradio.queueing import Queue

    with gr.Blocks() as demo:
        gr.Textbox()
    assert demo._queue.sleep_when_free < gradio_compat.QUEUE_IDLE_S  # Gradio's own, on Linux: 1 ms
    gradio_compat.pace_queue(demo)
    assert demo._queue.sleep_when_free == gradio_compat.QUEUE_IDLE_S
    # Read on each pass of the loop, not copied when it starts.
    assert "sleep_when_free" in Queue.start_processing.__code__.co_names


def test_a_mounted_app_is_told_where_it_runs():
    with gr.Blocks() as demo:
        gr.Textbox()
    gr.mount_gradio_app(FastAPI(), demo, path="/", mcp_server=True)
    gradio_compat.mark_running(demo, "http://127.0.0.1:9/")
    assert demo.is_running and demo.local_api_url == "http://127.0.0.1:9/gradio_api/"
    assert demo.mcp_server_obj.local_url == "http://127.0.0.1:9/"


def test_session_limits_are_the_attributes_gradios_app_reads():
    with gr.Blocks() as demo:
        gr.Textbox()
    assert demo.state_session_capacity == 10000 and hasattr(demo, "delete_cache")
    gradio_compat.set_session_limits(demo, sessions=12, delete_cache=(60, 900))
    assert (demo.state_session_capacity, demo.delete_cache) == (12, (60, 900))


@pytest.mark.parametrize("cut", [0, 10, 30, 60, 75, 95])
def test_the_poison_breaks_gradios_multipart_parser_wherever_it_is_cut(cut):
    from python_multipart.multipart import MultipartParser

    boundary = b"b0undary"
    body = (b"--b0undary\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.jpg\"\r\n"
            b"Content-Type: image/jpeg\r\n\r\n" + b"x" * 40 + b"\r\n--b0undary--\r\n")
    parser = MultipartParser(boundary, {})
    parser.write(body[:cut])
    with pytest.raises(Exception):
        parser.write(gradio_compat.multipart_poison(parser))
        parser.finalize()


def test_the_queue_stream_the_page_reads_still_speaks_estimation_with_rank_and_eta():
    """gradio_compat/page_js.py reads "estimation" messages (rank, rank_eta) from the fetches of
    /queue/join and /queue/data that Gradio's front end makes."""
    from pathlib import Path

    from gradio.server_messages import EstimationMessage

    assert EstimationMessage(queue_size=3, rank=1, rank_eta=2.0).model_dump()["msg"] == "estimation"
    assert {"rank", "rank_eta"} <= set(EstimationMessage.model_fields)
    bundle = Path(gr.__file__).parent / "templates" / "frontend" / "assets"
    assert any("queue/join" in p.read_text(errors="ignore") and "queue/data" in p.read_text(errors="ignore")
               for p in bundle.glob("index-*.js"))


def test_the_status_tracker_the_page_paces_is_still_its_own_script_asking_for_frames():
    """gradio_compat.FRAME_PACING_HEAD knows Gradio's status tracker by its script's name in the
    caller's stack: assets/statustracker-*.js, which asks for animation frames. Were it folded
    into another script, the pacing would quietly stop (test_browser counts by that name too)."""
    from pathlib import Path

    bundle = Path(gr.__file__).parent / "templates" / "frontend" / "assets"
    trackers = list(bundle.glob("statustracker-*.js"))
    assert len(trackers) == 1 and "requestAnimationFrame" in trackers[0].read_text(errors="ignore")
    assert "/statustracker" in gradio_compat.FRAME_PACING_HEAD

