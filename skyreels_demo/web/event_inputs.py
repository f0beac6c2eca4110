"""What each of the page's events may be sent, input by input, checked before Gradio keeps it.

Gradio keeps the last value of every input of every event in the session's state, and opens,
hashes and copies any file path a client names in a file input (when it is mounted rather than
launched, it checks nothing: `processing_utils._check_allowed` returns early unless the Blocks
has launched). So every event, public or private, gets a rule per input from its component's
kind: a text box its `max_length` (4,000 characters when it has none), a file input only files
this app holds (its upload folder, the folders it serves videos and pictures from, or for a
picture box an http(s) address the app fetches by its own rules), and every other input (a
number, a checkbox, a radio, a browser id, a hidden state) a few hundred bytes or a few KB.

An address this app gave out for one of its own files (`<its address>/gradio_api/file=<path>`,
an upload's or a video's) names a file it holds: it is rewritten to that path here, so the next
tool call of an agent chaining tools is served from disk, never downloaded from the app by the
app (Gradio's downloader, and ours, refuse an address that points to the server itself). Only
the app's own address is read that way, and only a path inside the folders above; any other
address is what it was (fetched by our rules for a picture, refused for a video).
A call that names an event by `fn_index` in any spelling ("5", 5.0, "05") is held to the same
rules as one that names it by its integer, and `/call/v2` by its parameter names.

`check(call, payload)` answers a `Refusal`-shaped (status, sentence) or None; the door
(door.py) turns it into the HTTP answer before Gradio reads the body.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping
from urllib.parse import unquote, urlsplit

log = logging.getLogger(__name__)

DEFAULT_TEXT_CHARS = 4_000  # a text box with no max_length of its own
VALUE_BYTES = 1_024  # a number, a checkbox, a radio or dropdown choice, a slider
LIST_BYTES = 4_096  # a checkbox group, a dataset's sample, a browser id
FILE_FIELD_CHARS = 4_096  # a file's path or address, as JSON text
FILE_INPUT_BYTES = 64 * 1024  # every file record of one input (a gallery of four with captions)
EXTRA_BYTES = 4_096  # event_data, oauth_token and the like beside the inputs
SESSION_HASH_CHARS = 64
MAX_EXTRA_INPUTS = 4  # values past an event's inputs, which Gradio ignores
# Where Gradio serves a file it holds, under any mount prefix: .../gradio_api/file=<path>.
_OWN_FILE = re.compile(r"(?:^|/)gradio_api/file=(?P<path>.+)$")


@dataclass(frozen=True)
class Rule:
    """How one input is bounded: `kind` is "text", "file" or "value"; `most` is characters of
    text, or bytes of JSON for the others; `remote` lets a file input name an http(s) address."""

    kind: str
    most: int
    remote: bool = False
    label: str = "input"


@dataclass(frozen=True)
class Event:
    """One event's inputs: every input in order, which of them an API call may skip, and the
    names /call/v2 gives the API's inputs (with which ones it requires)."""

    name: str
    rules: tuple[Rule, ...]
    api_positions: tuple[int, ...]
    parameters: tuple[str, ...] = ()
    required: frozenset[str] = frozenset()
    queue_only: bool = False  # a queued event of an app whose API is closed (api_open=False)


@dataclass(frozen=True)
class Refused:
    status: int
    sentence: str
    name: str | None = None  # the input refused (its API parameter name, else its label), if one was


@dataclass(frozen=True)
class _Call:
    """One call being checked: the names the caller reached the app by, and the addresses of
    the app's own files rewritten to their paths so far."""

    hosts: frozenset[str]
    rewritten: list[str]


NOT_HELD = (
    "That file was not uploaded to this app, so it was not opened: upload it first "
    "(gradio_client's handle_file does), or give the picture's https address."
)


def rule_for(component: Any) -> Rule:
    """An input's rule, from what kind of component it is (Gradio's classes, by name and mro)."""
    kinds = {cls.__name__ for cls in type(component).__mro__}
    label = str(getattr(component, "label", None) or type(component).__name__)
    if getattr(component, "stateful", False):
        return Rule("value", VALUE_BYTES, label=label)  # gr.State: Gradio ignores what is sent
    if "Textbox" in kinds:
        most = getattr(component, "max_length", None)
        if not isinstance(most, int) or isinstance(most, bool) or most < 0:
            most = DEFAULT_TEXT_CHARS
        return Rule("text", most, label=label)
    if kinds & {"Image", "Video", "File", "Gallery", "Audio", "Model3D", "UploadButton"}:
        # Only a picture box fetches an address itself (ui.ImageInput, by remote_images' rules).
        return Rule("file", FILE_INPUT_BYTES, remote="Image" in kinds, label=label)
    if kinds & {"CheckboxGroup", "Dataset", "BrowserState", "Dropdown"}:
        return Rule("value", LIST_BYTES, label=label)
    return Rule("value", VALUE_BYTES, label=label)


def events_of(blocks: Any) -> dict[int | str, Event]:
    """Every event of `blocks` by its fn_index, and the named ones by "api:<name>" too."""
    table: dict[int | str, Event] = {}
    for fn_index, fn in blocks.fns.items():
        inputs = list(fn.inputs)
        api_name = str(fn.api_name).strip("/") if fn.api_name else ""
        api_positions = tuple(i for i, c in enumerate(inputs) if not getattr(c, "skip_api", False))
        parameters, required = _parameters(blocks, api_name) if api_name else ((), frozenset())
        event = Event(
            name=api_name or f"event {fn_index}",
            rules=tuple(rule_for(c) for c in inputs),
            api_positions=api_positions,
            parameters=parameters if len(parameters) == len(api_positions) else (),
            required=required,
            queue_only=bool(fn.queue) and not getattr(blocks, "api_open", True),
        )
        table[fn_index] = event
        if api_name:
            table["api:" + api_name] = event
    return table


def fn_index_of(raw: Any) -> int | None:
    """The fn_index a body names, however spelled (5, "5", 5.0, "05"), as Gradio's own parsing
    would read it; None when it names none or cannot be one."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, str) and raw.strip().lstrip("+-").isdigit():
        return int(raw.strip())
    return None


class EventInputs:
    """Checks a call's body against its event's rules (see the module docstring)."""

    def __init__(self, events: Mapping[int | str, Event], roots: Iterable[str | os.PathLike]) -> None:
        self.events = dict(events)
        self.roots = tuple(os.path.abspath(os.fspath(r)) for r in roots)

    def check(
        self, route: str, api_name: str | None, payload: Any, hosts: Iterable[str] = (), rewritten: list[str] | None = None
    ) -> Refused | None:
        """`route` is "join", "call", "call/v2", "run" or "api"; `api_name` what the path names.

        `hosts`: the names the caller reached this app by (its Host and X-Forwarded-Host), so an
        address of the app's own files is known as one; each such address is rewritten in
        `payload` to the path it names, and listed in `rewritten`."""
        call = _Call(frozenset(h.strip().lower() for h in hosts if h and h.strip()), [] if rewritten is None else rewritten)
        if not isinstance(payload, dict):
            return Refused(422, "A call to this app must be a JSON object.")
        extra = self._check_extras(payload)
        if extra is not None:
            return extra
        if route == "call/v2":
            event = self.events.get("api:" + (api_name or ""))
            if event is None:
                return Refused(404, f"This app has no endpoint named /{api_name}.")
            return self._check_named(event, payload, call)
        event, refused = self._event(route, api_name, payload)
        if refused is not None:
            return refused
        if route in ("run", "api") and event.queue_only:
            # Gradio's own answer, given before it reads the inputs: nothing of them to check.
            return Refused(404, "This API endpoint does not accept direct HTTP POST requests: join the queue "
                                "(gradio_client, and /gradio_api/call/<name>, do).")
        data = payload.get("data")
        if not isinstance(data, list):
            return Refused(422, "A call's inputs must be a JSON list under \"data\".")
        if len(data) >= len(event.rules):
            # Gradio reads an event's own inputs and ignores any after them: kept small.
            extra = len(data) - len(event.rules)
            rules = event.rules + (Rule("value", VALUE_BYTES),) * extra
            positions = tuple(range(len(data)))
            if extra > MAX_EXTRA_INPUTS:
                return Refused(422, f"/{event.name} takes {len(event.api_positions)} inputs, and this call gave {len(data)}.")
        elif route != "join" and len(data) == len(event.api_positions):
            rules = tuple(event.rules[i] for i in event.api_positions)
            positions = event.api_positions
        else:
            wanted = len(event.api_positions) if route != "join" else len(event.rules)
            return Refused(422, f"/{event.name} takes {wanted} inputs, and this call gave {len(data)}.")
        names = dict(zip(event.api_positions, event.parameters))
        for value, rule, position in zip(data, rules, positions):
            refused = self._check_value(rule, value, call)
            if refused is not None:
                return replace(refused, name=names.get(position) or rule.label)
        return None

    # -- the parts of a call --

    def _event(self, route: str, api_name: str | None, payload: dict) -> tuple[Event, None] | tuple[None, Refused]:
        raw = payload.get("fn_index")
        if route in ("join", "run", "api") and raw is not None:
            fn_index = fn_index_of(raw)
            event = self.events.get(fn_index) if fn_index is not None else None
            if event is None:
                return None, Refused(404, "That call names no event of this app.")
            payload["fn_index"] = fn_index  # the door's reading is the one Gradio gets
            return event, None
        if route == "join":
            return None, Refused(422, "A queue join must name its event (fn_index).")
        event = self.events.get("api:" + (api_name or ""))
        if event is None:
            return None, Refused(404, f"This app has no endpoint named /{api_name}.")
        return event, None

    def _check_extras(self, payload: dict) -> Refused | None:
        session = payload.get("session_hash")
        if session is not None and (not isinstance(session, str) or len(session) > SESSION_HASH_CHARS):
            return Refused(422, "A call's session_hash must be a short string.")
        for key, value in payload.items():
            if key in ("data", "session_hash", "fn_index"):
                continue
            if _json_bytes(value) > EXTRA_BYTES:
                return Refused(413, f"A call's {key!r} field may carry at most {EXTRA_BYTES} bytes.")
        return None

    def _check_named(self, event: Event, payload: dict, call: "_Call") -> Refused | None:
        if not event.parameters:
            return Refused(404, f"/{event.name} cannot be called by parameter names; use /call/{event.name}.")
        by_name = dict(zip(event.parameters, (event.rules[i] for i in event.api_positions)))
        unknown = sorted(k for k in payload if k not in by_name and k not in ("session_hash", "oauth_token"))
        if unknown:
            return Refused(422, f"/{event.name} has no input named {unknown[0]!r}; it takes {', '.join(event.parameters)}.")
        missing = sorted(event.required - set(payload))
        if missing:
            return Refused(422, f"/{event.name} needs {', '.join(missing)}: give {'it' if len(missing) == 1 else 'them'} and call again.")
        for name, rule in by_name.items():
            if name in payload:
                refused = self._check_value(rule, payload[name], call)
                if refused is not None:
                    return replace(refused, name=name)
        return None

    def _check_value(self, rule: Rule, value: Any, call: "_Call") -> Refused | None:
        if rule.kind == "text":
            if _chars(value) > rule.most:
                return Refused(413, f"That text is too long: at most {rule.most} characters.")
            if _json_bytes(value) > 8 * rule.most + 64:  # text in a structure of padding
                return Refused(413, f"That text is too long: at most {rule.most} characters.")
            return None
        if rule.kind == "file":
            if _json_bytes(value) > rule.most:
                return Refused(413, "That file input carries too much: give a file uploaded to this app.")
            return self._check_files(rule, value, call)
        if _json_bytes(value) > rule.most:
            return Refused(413, f"That value for {rule.label!r} is too large for it.")
        return None

    def _check_files(self, rule: Rule, value: Any, call: "_Call") -> Refused | None:
        for record in _file_records(value):
            path = record.get("path")
            url = record.get("url")
            for field in (path, url, record.get("orig_name")):
                if isinstance(field, str) and len(field) > FILE_FIELD_CHARS:
                    return Refused(413, "A file's name or address is too long.")
            if isinstance(url, str) and url.startswith("data:"):
                return Refused(422, "Give the picture as an upload or an https address, not as a data URI in a file input.")
            if not isinstance(path, str) or not path:
                if url is None:
                    return Refused(422, "A file input must name a file uploaded to this app.")
                continue
            own = self.own_file(path, call.hosts) if path.startswith(("http://", "https://")) else None
            if own is not None:
                if not self.holds(own):
                    log.info("refused a call naming an address of this app outside its files")
                    return Refused(403, NOT_HELD)
                # The app's own file, by the address it gave out: named by its path from here on.
                record["path"] = own
                record.pop("url", None)
                call.rewritten.append(own)
                continue
            if path.startswith(("http://", "https://")):
                if rule.remote:
                    continue  # fetched by the app's own rules (remote_images), after the caps
                return Refused(
                    422,
                    "That address is not one this app gave out: give the address of a video it made, "
                    "or upload the file to this app first (gradio_client's handle_file does), then name it.",
                )
            if not self.holds(path):
                log.info("refused a call naming a file outside this app's uploads")
                return Refused(403, NOT_HELD)
        return None

    def own_file(self, address: str, hosts: Iterable[str]) -> str | None:
        """The path an address of this app's own files names (`<app>/gradio_api/file=<path>`,
        as the caller reached the app), or None for any other address. Not checked here that
        the app holds it: `holds` says that."""
        try:
            parts = urlsplit(address.strip())
        except ValueError:
            return None
        if parts.scheme not in ("http", "https") or parts.netloc.lower() not in hosts:
            return None
        match = _OWN_FILE.search(parts.path)
        if match is None:
            return None
        path = unquote(match["path"])
        return path if os.path.isabs(path) else None

    def holds(self, path: str) -> bool:
        """Whether `path` lies inside this app's upload folder or a folder it serves from; by its
        name alone (no file is opened, no link followed: the event loop must not wait on a disk)."""
        if "\x00" in path:
            return False
        absolute = os.path.abspath(path)
        return any(absolute.startswith(root + os.sep) for root in self.roots)


def _file_records(value: Any) -> Iterable[dict]:
    """Every dict in `value` that Gradio could take for a file (it has a "path" or a "url")."""
    if isinstance(value, dict):
        if "path" in value or "url" in value:
            yield value
        for inner in value.values():
            if isinstance(inner, (dict, list)):
                yield from _file_records(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _file_records(inner)


def _parameters(blocks: Any, api_name: str) -> tuple[tuple[str, ...], frozenset[str]]:
    """The names /call/v2 gives an event's inputs, and the ones without a default."""
    try:
        info = blocks.get_api_info()
        parameters = info["named_endpoints"]["/" + api_name]["parameters"]
    except Exception:  # private or unnamed events have no description: /call/v2 refuses them
        return (), frozenset()
    names = tuple(str(p.get("parameter_name")) for p in parameters)
    required = frozenset(str(p.get("parameter_name")) for p in parameters if not p.get("parameter_has_default"))
    return names, required


def _chars(value: Any) -> int:
    """Characters of text in a value, nested ones too (a box may be sent a list)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(_chars(k) + _chars(v) for k, v in value.items())
    if isinstance(value, list):
        return sum(_chars(v) for v in value)
    return 0


def _json_bytes(value: Any) -> int:
    try:
        return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    except (TypeError, ValueError):
        return 1 << 30
