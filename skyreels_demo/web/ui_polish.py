"""What keeps the page pleasant for a stranger: a status that is always fresh, an error said once,
what a click changed brought into view, and a seed box that answers in the app's own words.

The browser-side steps here are tiny JavaScript functions that Gradio runs without a round trip
(`fn=None, js=...`): the status must change the instant Generate is pressed, not when the
server's first answer arrives, and a scroll is the page's business, not the server's.
"""

from __future__ import annotations

import json

import gradio as gr

from skyreels_demo.web.status_board import StatusBoard, idle_status

# A helper every snippet shares: brings an element into view when it is mostly out of it.
_REVEAL = """const reveal = (id, low = 0.6) => {
  const el = document.getElementById(id);
  const box = el && el.getBoundingClientRect();
  if (box && (box.top < 0 || box.top > window.innerHeight * low)) el.scrollIntoView({block: 'start'});
};"""


def fresh_status_js() -> str:
    """On Generate: the status shows a new run at once (never the last run's words), in view."""
    starting = json.dumps(StatusBoard().render())
    return f"() => {{ {_REVEAL} reveal('status'); return {starting}; }}"


def clear_refusal_js() -> str:
    """When the inputs change after a refusal or failure, the status stops describing it."""
    idle = json.dumps(idle_status())
    return f"(shown) => (typeof shown === 'string' && shown.includes('class=\"failed\"')) ? {idle} : shown"


def reveal_js(element_id: str, *, low: float = 0.6) -> str:
    """Brings `element_id` into view (its top on the screen), passing the event's inputs through."""
    return f"(...inputs) => {{ {_REVEAL} reveal({json.dumps(element_id)}, {low}); return inputs; }}"


def after_run_js() -> str:
    """After a run: a failure is brought into view (said once, in the status, never only in a
    pop-up), and a finished clip is shown whole, its controls included."""
    return (
        f"() => {{ {_REVEAL} const status = document.getElementById('status');"
        " if (status && status.querySelector('li.failed')) { reveal('status', 0.8); return; }"
        " const video = document.querySelector('#result-video video'); if (!video) return;"
        " const whole = () => { const box = video.getBoundingClientRect();"
        " if (box.bottom > window.innerHeight || box.top < 0)"
        " document.getElementById('result-video').scrollIntoView({block: 'nearest'}); };"
        # Its size is known once its metadata is: a clip just handed over has none yet.
        " if (video.readyState >= 1) whole(); else video.addEventListener('loadedmetadata', whole, {once: true}); }"
    )


def whole_video_js(element_id: str) -> str:
    """A video (in the block `element_id`) shown whole, its controls included, once its size is known."""
    target = json.dumps(element_id)
    return (
        f"() => {{ const block = document.getElementById({target}); if (!block) return;"
        " const show = () => { const video = block.querySelector('video'); if (!video) return;"
        " const whole = () => { const box = video.getBoundingClientRect();"
        " if (box.bottom > window.innerHeight || box.top < 0) block.scrollIntoView({block: 'nearest'}); };"
        " if (video.readyState >= 1) whole(); else video.addEventListener('loadedmetadata', whole, {once: true}); };"
        # The picked take's video arrives a moment after the click.
        " setTimeout(show, 50); setTimeout(show, 600); }"
    )


def reveal_inputs_js() -> str:
    """After an example is chosen: the image and prompt it filled in, in view."""
    return f"() => {{ {_REVEAL} reveal('input-image', 0.3); }}"


# Waits (a few frames at most, up to 3 s) until `id`'s element is drawn (a tab just switched
# to draws its contents a moment later), then runs `then(el)`.
_WHEN_DRAWN = """const whenDrawn = (id, then) => {
  const started = performance.now();
  const look = () => {
    const el = document.getElementById(id);
    if (el && el.getClientRects().length && el.getBoundingClientRect().height > 0) { then(el); return; }
    if (performance.now() - started < 3000) requestAnimationFrame(look);
  };
  look();
};"""


_NEAREST = "(el) => { const box = el.getBoundingClientRect(); if (box.top < 0 || box.bottom > window.innerHeight) el.scrollIntoView({block: 'nearest'}); }"


def note_in_view_js(note_id: str) -> str:
    """After a button that answers in the note `note_id` (ui_notes.py): the note, if it says
    anything, scrolled just into view (a note under a button near the screen's edge is not seen)."""
    return f"() => {{ {_WHEN_DRAWN} whenDrawn({json.dumps(note_id)}, {_NEAREST}); }}"


def reveal_form_js(note_id: str) -> str:
    """After Create was filled (a shared take's "Make one like it", a take made again from its
    zip, History's "Use these settings"): the filled form in view, its picture at the top; or,
    when the note (the step's one input) says why nothing was filled, that note."""
    return (
        f"(said) => {{ {_WHEN_DRAWN} if (typeof said === 'string' && said.trim()) {{ whenDrawn({json.dumps(note_id)}, {_NEAREST}); return; }}"
        " whenDrawn('input-image', (el) => el.scrollIntoView({block: 'start'})); }"
    )


def reveal_said_js(element_id: str) -> str:
    """After a step that answers in `element_id` (a comparison, a sentence): that answer in view,
    whole if it fits, else from its top (a comparison's videos, not only its buttons)."""
    return (
        f"() => {{ {_WHEN_DRAWN} whenDrawn({json.dumps(element_id)}, (el) => {{ const fit = () => {{ const box = el.getBoundingClientRect();"
        " if (box.top < 0 || box.bottom > window.innerHeight) el.scrollIntoView({block: 'start'}); };"
        # A video's height is known once its metadata is: measured before, the answer looks short.
        " const video = el.querySelector('video');"
        " if (video && video.readyState < 1) video.addEventListener('loadedmetadata', fit, {once: true}); else fit(); }); }"
    )


def continued_js(note_id: str) -> str:
    """After "Continue this shot": the new picture and the emptied prompt in view, the prompt
    focused; or, when the note (the step's one input) says why nothing was continued, that note."""
    return (
        f"(said) => {{ {_WHEN_DRAWN} if (typeof said === 'string' && said.trim()) {{ whenDrawn({json.dumps(note_id)}, {_NEAREST}); return; }}"
        " whenDrawn('prompt', () => { const box = document.querySelector('#prompt textarea');"
        " if (box) { box.scrollIntoView({block: 'center'}); box.focus(); } }); }"
    )


def film_cut_js() -> str:
    """After a film's event: the cut film in view, whole, playing (as Create's video does)."""
    return (
        f"() => {{ {_WHEN_DRAWN} whenDrawn('film-video', (block) => {{"
        " const video = block.querySelector('video'); if (!video) return;"
        " const whole = () => { const box = video.getBoundingClientRect();"
        " if (box.bottom > window.innerHeight || box.top < 0) block.scrollIntoView({block: box.height > window.innerHeight ? 'start' : 'nearest'}); };"
        " if (video.readyState >= 1) whole(); else video.addEventListener('loadedmetadata', whole, {once: true});"
        " video.muted = true; if (video.paused) video.play().catch(() => {}); }); }"
    )


# A press of a take's button while a pick is on its way is held, not dropped, and made once the
# pick lands: it then acts on the take just picked. (Disabled buttons dropped a press that fell
# between a quick visitor's, or a script's, look at the button and the click itself.)
_HOLD_PRESSES = """const row = document.getElementById('take-actions');
if (row && !row.dataset.holds) {
  row.dataset.holds = '1';
  row.addEventListener('click', (event) => {
    const button = event.target.closest('button');
    if (!button || row.getAttribute('aria-busy') !== 'true') return;
    event.preventDefault();
    event.stopImmediatePropagation();
    row.held = button;
  }, true);
}"""


def take_buttons_wait_js() -> str:
    """A thumbnail clicked: the picked take's row of buttons is busy at once, in the browser; a
    button pressed meanwhile is held until the pick lands (`take_buttons_ready_js`)."""
    return "() => { " + _HOLD_PRESSES + " if (row) row.setAttribute('aria-busy', 'true'); }"


def take_buttons_ready_js() -> str:
    """The pick has landed (or failed): the row works again, and a press held meanwhile is made."""
    return (
        "() => { const row = document.getElementById('take-actions'); if (!row) return;"
        " row.removeAttribute('aria-busy'); const held = row.held; row.held = null;"
        " if (held && held.isConnected) held.click(); }"
    )


def download_zip_js(element_id: str = "take-zip") -> str:
    """After "Download this take" (or a film's "Export for an editor"): the zip's own link
    clicked for the visitor (one click, not two)."""
    return (
        f"() => {{ {_WHEN_DRAWN} whenDrawn({json.dumps(element_id)}, (el) => {{"
        " const link = el.querySelector('a[href][download]') || el.querySelector('a[href]'); if (link) link.click(); }); }"
    )


def untagged_prompt_js() -> str:
    """The offline writer's "[Offline preview suggestion]" tag out of the prompt box: a tag left
    there would go to the model unless the visitor deleted it (the pop-up says it instead)."""
    return r"(prompt) => (typeof prompt === 'string') ? prompt.replace(/^\s*\[[^\]]{1,60}\]\s*/, '') : prompt"


CHECKING_KEY = "Checking the key with WaveSpeed…"


def checking_key_js() -> str:
    """While a key is checked: a sentence, not Gradio's timer (the check takes a second or two)."""
    return f"(key) => (typeof key === 'string' && key.trim()) ? {json.dumps(CHECKING_KEY)} : ''"




class SeedInput(gr.Number):
    """The seed box, handing the number on as typed: the run's own check (run_request.choose_seed)
    answers an out-of-range seed with the app's sentence, in the status, instead of Gradio's
    "Value 99999999999999 is greater than maximum value 2147483647" raised before any handler."""

    is_template = True  # drawn by gr.Number's own front end

    def api_info(self) -> dict:
        # The range the run's check takes, stated to API and MCP clients (-1 to 2147483647).
        info = {"type": "integer"}
        info.update({k: v for k, v in (("minimum", self.minimum), ("maximum", self.maximum)) if v is not None})
        return info

    def refusal(self, value: object) -> str | None:
        """The run's own sentence for a seed out of this box's range, for a client whose schema
        check would otherwise answer first in its own words (agents.py); None when it is fine."""
        from skyreels_demo.errors import BadInput
        from skyreels_demo.studio.run_request import check_seed

        try:
            check_seed(value, (int(self.minimum), int(self.maximum)))
        except BadInput as exc:
            return exc.sentence
        return None

    def preprocess(self, payload: float | None) -> float | int | None:
        if payload is None:
            return None
        if isinstance(payload, bool) or not isinstance(payload, (int, float)):
            return payload  # not a number: the run's check says so in a sentence
        return self.round_to_precision(payload, self.precision)


def randomize_js(seed_max: int) -> str:
    """The "Randomize seed" box, ticked or not, in the page: -1 (a new seed every run), or a seed
    to keep (a new one from 0 to `seed_max` if there was none)."""
    return (
        "(checked, seed) => checked ? -1 : "
        f"(typeof seed === 'number' && seed >= 0 ? seed : Math.floor(Math.random() * {seed_max + 1}))"
    )


# The box follows the seed: ticked for -1, unticked for a seed typed or reused.
SEED_IS_RANDOM_JS = "(seed) => seed === -1"
