"""The suite's own harness (conftest.py): what one test's app does never reaches another's."""

from __future__ import annotations

from pathlib import Path

import requests
from gradio.utils import get_upload_folder

from .conftest import LaunchedApp, jpeg_bytes, photo


def upload(app: LaunchedApp, data: bytes) -> Path:
    answer = requests.post(app.url + "gradio_api/upload", files={"files": ("photo.jpg", data, "image/jpeg")}, timeout=30)
    assert answer.status_code == 200, answer.text
    return Path(answer.json()[0])


def test_each_app_and_this_process_keep_the_same_picture_in_a_folder_of_its_own(tmp_path):
    # Gradio names an upload by its content, and an app that closes (as this process's in-process
    # apps do) deletes every file it made, by path: in one shared folder, a test's app lost its
    # visitor's picture mid-run to another test's app closing ("There is no file at ...").
    data = jpeg_bytes(photo())
    with LaunchedApp(tmp_path / "one") as one, LaunchedApp(tmp_path / "two") as two:
        paths = [upload(one, data), upload(two, data)]
    assert paths[0] != paths[1] and all(path.read_bytes() == data for path in paths)
    mine = Path(get_upload_folder())  # this process's, where its in-process apps write
    assert all(path.parent.parent != mine for path in paths), (mine, paths)
