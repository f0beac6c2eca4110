"""An image named by its web address: fetched only from public addresses, capped in size and time.

Pictures are served by a real HTTP server on 127.0.0.1 (allowed by the test switch); every
other address comes from an injected resolver, and a guard fails any test whose code would
connect beyond loopback, so no test sends traffic anywhere else or looks up a public name.
"""

from __future__ import annotations

import contextlib
import http.server
import ipaddress
import logging
import socket
import threading
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from skyreels_demo import images
from skyreels_demo.models import SKYREELS_V1
from skyreels_demo.config import Settings
from skyreels_demo.errors import BadInput, ImageRejected
from skyreels_demo.images.remote import MAX_REDIRECTS, fetch_image, non_public_kind

from .conftest import jpeg_bytes, photo

PICTURE = jpeg_bytes(photo(640, 480))


# --- the guard and the servers ---------------------------------------------------------------

_real_connect = socket.socket.connect


@pytest.fixture(autouse=True)
def only_loopback(monkeypatch):
    """Fail loudly if anything under test connects beyond this machine."""

    def connect(sock, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and host and not ipaddress.ip_address(host.split("%")[0]).is_loopback:
            raise AssertionError(f"a test tried to connect to {host}")
        return _real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


class PictureServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[str] = []
        self.hosts: list[str | None] = []  # each request's Host header

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_port}{path}"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: PictureServer

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.server.requests.append(self.path)
        self.server.hosts.append(self.headers.get("Host"))
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        route = parts.path
        if route == "/photo.jpg":
            self._answer(200, PICTURE, length=len(PICTURE))
        elif route == "/redirect":
            self.send_response(302)
            self.send_header("Location", query["to"][0])
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif route == "/loop":
            self.send_response(302)
            self.send_header("Location", "/loop")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif route == "/endless":  # no Content-Length: the body ends when the connection does
            self.send_response(200)
            self.end_headers()
            try:
                for _ in range(int(query["chunks"][0])):
                    self.wfile.write(b"\xff" * 65536)
            except OSError:
                pass  # the client stopped reading, as it should
        elif route == "/chunked":  # HTTP/1.1 chunked transfer coding, no length up front
            self.protocol_version = "HTTP/1.1"
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Connection", "close")
            self.end_headers()
            try:
                for start in range(0, len(PICTURE) * int(query["times"][0]), 4096):
                    piece = (PICTURE * int(query["times"][0]))[start : start + 4096]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.write(b"0\r\n\r\n")
            except OSError:
                pass
        elif route == "/declares-huge":
            self._answer(200, b"tiny", length=10**9)
        elif route == "/understated":  # says 1,000 bytes, then sends megabytes
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            try:
                self.wfile.write(b"\xff" * 5_000_000)
            except OSError:
                pass
        elif route == "/stall":  # never answers in time
            time.sleep(float(query["s"][0]))
            self._answer(200, PICTURE, length=len(PICTURE))
        elif route == "/drip":  # answers at once, then a byte at a time
            self.send_response(200)
            self.end_headers()
            try:
                for _ in range(100):
                    self.wfile.write(b"\xff")
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                pass
        else:
            self._answer(404, b"no such picture", length=15)

    def _answer(self, status: int, body: bytes, *, length: int) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(length))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    server = PictureServer()
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


class FakeDNS:
    """A resolver with getaddrinfo's signature, answering from a table; it never sends a packet."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.asked: list[str] = []

    def __call__(self, host, port, family=0, type=0, proto=0, flags=0):
        self.asked.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        answers = []
        for text in self.table[host]:
            ip = ipaddress.ip_address(text)
            if ip.version == 4:
                answers.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (text, port)))
            else:
                answers.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (text, port, 0, 0)))
        return answers


def loopback_dns(**more: list[str]) -> FakeDNS:
    return FakeDNS({"127.0.0.1": ["127.0.0.1"], **more})


# --- what gets through ---------------------------------------------------------------------


def test_picture_on_loopback_is_fetched_with_the_test_switch_on(server):
    data = fetch_image(server.url("/photo.jpg"), allow_loopback=True)
    assert data == PICTURE
    assert images.prepare(data, frames=SKYREELS_V1.frames).width == 960  # and it becomes the model's frame
    assert server.requests == ["/photo.jpg"]


def test_test_switch_is_off_unless_the_environment_says_so():
    assert Settings.from_env({}).allow_loopback_images is False
    assert Settings.from_env({"SKYREELS_ALLOW_LOOPBACK_IMAGES": "1"}).allow_loopback_images is True


def test_loopback_address_is_refused_with_the_switch_off_and_nothing_is_fetched(server):
    with pytest.raises(ImageRejected) as refused:
        fetch_image(server.url("/photo.jpg"))
    assert str(refused.value) == (
        "That image address points to this server itself, so it was not fetched: upload the file instead."
    )
    assert isinstance(refused.value, BadInput)
    assert server.requests == []


def test_localhost_by_name_is_refused_like_its_address(server):
    dns = FakeDNS({"localhost": ["127.0.0.1", "::1"]})
    with pytest.raises(ImageRejected, match="this server itself"):
        fetch_image(f"http://localhost:{server.server_port}/photo.jpg", resolve=dns)
    assert server.requests == []


# --- addresses that reach inward, from a resolver: no connection is made -------------------------


@pytest.mark.parametrize(
    ("address", "sentence"),
    [
        ("::ffff:127.0.0.1", "this server itself"),  # v4-mapped
        ("2002:7f00:1::1", "this server itself"),  # 6to4 around 127.0.0.1
        ("64:ff9b::7f00:1", "this server itself"),  # NAT64 around 127.0.0.1
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "this server itself"),  # Teredo, client 127.0.0.1
        ("64:ff9b::a9fe:a9fe", "private network"),  # NAT64 around the metadata address
        ("64:ff9b:1::808:808", "private network"),  # local-use NAT64 prefix
        ("100.100.100.200", "private network"),  # CGNAT, where some clouds keep metadata
        ("169.254.169.254", "private network"),
        ("10.0.0.7", "private network"),
        ("fd00::1", "private network"),
        ("198.18.0.1", "not a public internet address"),
        ("203.0.113.9", "not a public internet address"),
        ("2001:db8::1", "not a public internet address"),
        ("0.0.0.0", "not a public internet address"),
        ("::", "not a public internet address"),
        ("239.1.1.1", "not a public internet address"),
    ],
)
def test_host_resolving_inward_is_refused_even_with_the_switch_on(address, sentence):
    dns = FakeDNS({"pictures.example": [address]})
    with pytest.raises(ImageRejected, match=sentence):
        fetch_image("http://pictures.example/photo.jpg", allow_loopback=True, resolve=dns)
    assert dns.asked == ["pictures.example"]


def test_ipv6_loopback_literal_is_refused_with_the_switch_off():
    dns = FakeDNS({"::1": ["::1"]})
    with pytest.raises(ImageRejected, match="this server itself"):
        fetch_image("http://[::1]:8080/photo.jpg", resolve=dns)


def test_host_with_one_public_and_one_private_address_is_refused():
    # Which of them a connection would get is not ours to choose, so one inward is enough.
    dns = FakeDNS({"mixed.example": ["93.184.216.34", "192.168.1.10"]})
    with pytest.raises(ImageRejected, match="private network"):
        fetch_image("https://mixed.example/photo.jpg", resolve=dns)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("93.184.216.34", None),
        ("2606:4700::1111", None),
        ("::ffff:93.184.216.34", None),
        ("2002:5db8:d822::1", None),  # 6to4 around a public address
        ("64:ff9b::5db8:d822", None),  # NAT64 around a public address (DNS64 networks)
        ("100.63.255.255", None),
        ("100.128.0.0", None),
        ("100.64.0.0", "shared (carrier-grade NAT)"),
        ("100.127.255.255", "shared (carrier-grade NAT)"),
        ("172.31.255.255", "private"),
        ("fe80::1%eth0", "link-local"),
        ("255.255.255.255", "reserved"),
        ("::127.0.0.1", "reserved"),
        ("2002:c0a8:101::", "private"),  # 6to4 around 192.168.1.1
        ("::ffff:100.64.0.1", "shared (carrier-grade NAT)"),
    ],
)
def test_which_addresses_count_as_public(address, kind):
    assert non_public_kind(address) == kind


def test_unknown_host_name_is_refused_with_a_sentence():
    with pytest.raises(ImageRejected, match="host name could not be found"):
        fetch_image("http://nowhere.invalid/photo.jpg", resolve=FakeDNS({}))


# --- redirects -----------------------------------------------------------------------------------


def test_redirect_from_an_allowed_address_to_a_private_one_is_refused(server):
    dns = loopback_dns(**{"inside.example": ["10.1.2.3"]})
    url = server.url("/redirect?to=http://inside.example/latest/meta-data/")
    with pytest.raises(ImageRejected, match="private network"):
        fetch_image(url, allow_loopback=True, resolve=dns)
    assert server.requests == ["/redirect?to=http://inside.example/latest/meta-data/"]
    assert dns.asked == ["127.0.0.1", "inside.example"]


def test_redirect_to_a_file_address_is_refused(server):
    with pytest.raises(ImageRejected, match="Only http and https"):
        fetch_image(server.url("/redirect?to=file:///etc/passwd"), allow_loopback=True)


def test_redirect_to_a_picture_on_an_allowed_address_is_followed(server):
    data = fetch_image(server.url("/redirect?to=/photo.jpg"), allow_loopback=True)
    assert data == PICTURE
    assert server.requests == ["/redirect?to=/photo.jpg", "/photo.jpg"]


def test_endless_redirects_stop_after_five_with_a_sentence(server):
    with pytest.raises(ImageRejected, match="redirects more than 5 times"):
        fetch_image(server.url("/loop"), allow_loopback=True)
    assert len(server.requests) == MAX_REDIRECTS + 1


# --- size ------------------------------------------------------------------------------------------


def test_picture_over_the_size_cap_is_refused_while_streaming(server):
    # No Content-Length: 2 MB arrive against a 1 MB cap, and reading stops at the cap.
    with pytest.raises(ImageRejected) as refused:
        fetch_image(server.url("/endless?chunks=32"), allow_loopback=True, max_bytes=1_000_000)
    assert str(refused.value) == (
        "The picture at that address is larger than 1 MB, so it was not fetched: "
        "use a smaller picture, or upload the file."
    )


def test_chunked_picture_is_fetched_whole_and_capped_all_the_same(server):
    assert fetch_image(server.url("/chunked?times=1"), allow_loopback=True) == PICTURE
    with pytest.raises(ImageRejected, match="larger than"):
        fetch_image(server.url("/chunked?times=4"), allow_loopback=True, max_bytes=len(PICTURE) * 2)


def test_declared_length_over_the_cap_is_refused_before_reading(server):
    with pytest.raises(ImageRejected, match="larger than 50 MB"):
        fetch_image(server.url("/declares-huge"), allow_loopback=True)


def test_understated_length_never_lets_more_than_it_through(server):
    # A server that says 1,000 bytes and sends megabytes gets 1,000 bytes read, no more.
    data = fetch_image(server.url("/understated"), allow_loopback=True, max_bytes=1_000_000)
    assert len(data) == 1000


# --- time, schemes and answers ----------------------------------------------------------------------


def test_server_that_does_not_answer_times_out_with_a_sentence(server):
    started = time.monotonic()
    with pytest.raises(ImageRejected) as refused:
        fetch_image(server.url("/stall?s=3"), allow_loopback=True, timeout_s=0.5)
    assert time.monotonic() - started < 2
    assert str(refused.value) == (
        "The image address took too long to answer, so the picture was not fetched: "
        "try again later, or upload the file instead."
    )


def test_server_that_drips_the_body_is_cut_off_at_the_deadline(server):
    started = time.monotonic()
    with pytest.raises(ImageRejected, match="took too long"):
        fetch_image(server.url("/drip"), allow_loopback=True, timeout_s=1.0)
    assert time.monotonic() - started < 2.5


def test_slow_name_lookup_times_out_with_a_sentence():
    def slow(*args, **kwargs):
        time.sleep(2)
        raise socket.gaierror("too late")

    started = time.monotonic()
    with pytest.raises(ImageRejected, match="took too long"):
        fetch_image("http://slow.example/photo.jpg", resolve=slow, timeout_s=0.3)
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://pictures.example/photo.jpg", "gopher://x/", "data:image/png;base64,AA"]
)
def test_address_that_is_not_http_is_refused_before_any_lookup(url):
    dns = FakeDNS({})
    with pytest.raises(ImageRejected) as refused:
        fetch_image(url, resolve=dns)
    assert str(refused.value) == (
        "Only http and https image addresses can be fetched, so this one was not: upload the file instead."
    )
    assert dns.asked == []


@pytest.mark.parametrize("url", ["http:///photo.jpg", "http://pictures.example:99999/photo.jpg", "http://[::1/"])
def test_malformed_address_is_refused_with_a_sentence(url):
    with pytest.raises(ImageRejected, match="not a valid web address"):
        fetch_image(url, resolve=FakeDNS({}))


def test_missing_picture_says_what_the_server_answered(server):
    with pytest.raises(ImageRejected) as refused:
        fetch_image(server.url("/gone.jpg"), allow_loopback=True)
    assert str(refused.value) == (
        "The image address answered 404 Not Found, so the picture was not fetched: "
        "check the address, or upload the file instead."
    )


def test_closed_port_is_refused_as_unreachable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here once closed
    with pytest.raises(ImageRejected, match="could not be reached"):
        fetch_image(f"http://127.0.0.1:{port}/photo.jpg", allow_loopback=True)


def test_log_never_holds_the_query_string_or_credentials(server, caplog):
    caplog.set_level(logging.DEBUG, logger="skyreels_demo.images.remote")
    url = f"http://someone:hunter2@127.0.0.1:{server.server_port}/photo.jpg?token=s3cret"
    fetch_image(url, allow_loopback=True)
    with pytest.raises(ImageRejected) as refused:
        fetch_image(url)
    assert "hunter2" not in caplog.text and "s3cret" not in caplog.text
    assert "hunter2" not in str(refused.value) and "s3cret" not in str(refused.value)
    assert "/photo.jpg" in caplog.text  # the rest is there to debug with


@pytest.fixture
def tls_server(tmp_path, monkeypatch):
    """A picture server on 127.0.0.1 speaking TLS as `pics.test`, trusted by this test only."""
    import shutil
    import ssl
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=pics.test",
         "-addext", "subjectAltName=DNS:pics.test", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    server = PictureServer()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.names: list[str | None] = []
    context.sni_callback = lambda sock, name, ctx: server.names.append(name)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_https_address_is_verified_against_its_name_while_connected_to_the_checked_ip(tls_server):
    dns = FakeDNS({"pics.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]})
    port = tls_server.server_port
    assert fetch_image(f"https://pics.test:{port}/photo.jpg", allow_loopback=True, resolve=dns) == PICTURE
    with pytest.raises(ImageRejected, match="secure connection could not be verified"):
        fetch_image(f"https://other.test:{port}/photo.jpg", allow_loopback=True, resolve=dns)
    assert tls_server.names == ["pics.test", "other.test"]  # SNI carries the name, not the IP
    assert tls_server.requests == ["/photo.jpg"]
    assert tls_server.hosts == [f"pics.test:{port}"]


# --- through Gradio: an API client's {"url": ...} reaches the handler unfetched -----------------


@pytest.fixture(scope="module")
def image_app():
    import gradio as gr
    from gradio import processing_utils

    from skyreels_demo.web.components import ImageInput

    gradio_downloads: list[str] = []
    original = processing_utils.async_ssrf_protected_download

    async def recorded(url, cache_dir):
        gradio_downloads.append(url)
        return await original(url, cache_dir)

    processing_utils.async_ssrf_protected_download = recorded

    def handed(image) -> str:
        return f"{type(image).__name__} {getattr(image, 'url', image)}"

    with gr.Blocks(analytics_enabled=False) as demo:
        image = ImageInput(type="filepath")
        answer = gr.Textbox()
        image.change(handed, image, answer, api_name="handed")
    _, url, _ = demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, show_error=False, quiet=True)
    try:
        yield url, gradio_downloads
    finally:
        demo.close()
        processing_utils.async_ssrf_protected_download = original


def test_api_client_image_address_reaches_the_handler_unfetched(image_app, server, monkeypatch):
    """Neither Gradio's downloader nor ours touches the address in the image box: the studio
    fetches it, once the run's caps have let it go (tests below, against the launched app)."""
    from gradio_client import Client, handle_file

    app_url, gradio_downloads = image_app
    monkeypatch.setenv("SKYREELS_ALLOW_LOOPBACK_IMAGES", "1")
    answer = Client(app_url, verbose=False).predict(handle_file(server.url("/photo.jpg")), api_name="/handed")
    assert answer == f"ImageAddress {server.url('/photo.jpg')}"
    assert server.requests == []
    assert gradio_downloads == []


def test_an_address_naming_this_machine_is_refused_with_our_sentence_before_any_fetch(server):
    from skyreels_demo.images.remote import ImageAddress
    from skyreels_demo.studio.run_request import image_source

    address = ImageAddress(server.url("/photo.jpg"))
    with pytest.raises(ImageRejected, match="points to this server itself"):
        image_source(address, "crop", SKYREELS_V1)
    assert image_source(address, "crop", SKYREELS_V1, allow_loopback=True) is address
    assert server.requests == []


def test_an_address_is_fetched_once_however_many_runs_ask(server):
    from skyreels_demo.images.remote import ImageAddress

    address = ImageAddress(server.url("/photo.jpg?token=s3cret"))
    futures = [address.fetch(len, allow_loopback=True) for _ in range(4)]
    assert {future.result(timeout=30) for future in futures} == {len(PICTURE)}
    assert server.requests == ["/photo.jpg?token=s3cret"]
    assert "s3cret" not in repr(address)


# --- caps before work: a launched shared app fetches an address only for a run that may go ------

CAPS_SENTENCE = "This Space has made all the videos it can today on its owner's key"


@contextlib.contextmanager
def shared_app(tmp_path, **env):
    from skyreels_demo.local_api import LocalBackend, TaskTiming

    from .conftest import LaunchedApp

    with LocalBackend(timing=TaskTiming(0.2, 0.4), render=False) as backend, LaunchedApp(
        tmp_path / "space",
        WAVESPEED_BASE_URL=backend.base_url,
        WAVESPEED_API_KEY="fake-owner-key",
        SKYREELS_SHARED="1",
        SKYREELS_ALLOW_LOOPBACK_IMAGES="1",
        SKYREELS_PREVIEW_TIMING="0.2,0.4",
        **env,
    ) as app:
        yield app, backend


def test_at_a_daily_cap_of_zero_an_address_is_refused_in_the_caps_words_and_never_fetched(server, tmp_path):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    with shared_app(tmp_path, SKYREELS_APP_RUNS_PER_DAY="0") as (app, backend):
        client = Client(app.url, verbose=False)
        picture = handle_file(server.url("/photo.jpg"))
        for attempt in range(3):
            with pytest.raises(AppError, match=CAPS_SENTENCE):
                client.predict(f"a woman smiles, take {attempt}", picture, attempt, api_name="/generate")
        with pytest.raises(AppError, match=CAPS_SENTENCE):
            client.predict(picture, "she laughs", "", api_name="/suggest_prompt")
        grid, lines = client.predict("a woman smiles", picture, 2, 5, api_name="/generate_variations")
        assert lines.count("has made all the videos it can today") == 2
        assert server.requests == []  # the picture server never heard from the app
        assert backend.tasks_created == 0


def test_with_room_under_the_caps_an_address_is_fetched_once_per_request(server, tmp_path):
    from gradio_client import Client, handle_file

    from .conftest import video_facts

    with shared_app(tmp_path) as (app, backend):
        client = Client(app.url, verbose=False)
        picture = handle_file(server.url("/photo.jpg"))
        job = client.submit("a woman smiles", picture, 7, api_name="/generate")
        statuses = [status for status, video, summary in job]
        status, video, summary = job.result()
        assert "Seed 7" in summary and video_facts(video)["frames"] == 97
        assert any("Fetching the picture from its address" in shown for shown in statuses)
        assert server.requests == ["/photo.jpg"]
        # Two variations of one request: one fetch between them.
        grid, lines = client.predict("a man nods", picture, 2, 40, api_name="/generate_variations")
        assert lines.count("✓") == 2
        assert server.requests == ["/photo.jpg"] * 2
        assert backend.tasks_created == 3
