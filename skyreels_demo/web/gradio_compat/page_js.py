"""The page's scripts that reach into Gradio's front end: they stay JavaScript, defined here.

Read from Gradio 6.31.0: gradio/templates/frontend (the built page: its queue client's
`fetch` of /queue/join and /queue/data, the server-sent "estimation" messages of
gradio/server_messages.py, the aria labels its components draw, and its status tracker's
assets/statustracker-*.js). tests/test_browser.py is the test that fails when an upgrade changes
them: it reads the place in line, the page's accessible names and who asks for its frames in a
real browser.
"""

from __future__ import annotations

import json

# Gradio's status tracker (@gradio/statustracker) times a pending event on every animation
# frame, through the requestAnimationFrame it took when its module was first read, and never
# stops once it is unmounted while pending: the app's own loader is, as every page opens. The
# page then draws sixty frames a second for as long as it is open, about 6% of a core doing
# nothing (bench/bench_page_frames.py). Its timer shows tenths of a second, so it is woken ten
# times a second instead, by a timer that draws nothing when nothing changed; every other
# caller's frames are as asked. It must run before Gradio's modules are read: the page's server
# puts it at the top of the page's head (served_page), not in Blocks(head=), which Gradio adds
# later.
FRAME_PACING_HEAD = """<script>
(() => {
  const frame = window.requestAnimationFrame.bind(window);
  window.requestAnimationFrame = (callback) => {
    const caller = (new Error().stack || '').split('\\n')[2] || '';
    if (!caller.includes('/statustracker')) return frame(callback);
    return setTimeout(() => callback(performance.now()), 100);
  };
})();
</script>"""

# The page's own fixes for Gradio's markup, found by axe-core: the empty player's "Empty value"
# label on a div with no role (aria-prohibited-attr), and buttons (the upload area, History's
# thumbnails) whose accessible name does not contain the words they show
# (label-content-name-mismatch): the shown words are put first. Applied as Gradio draws, before
# the page can be read again. And for a visitor who asked for less motion, no video plays itself.
ACCESSIBLE_MARKUP_HEAD = """<script>
(() => {
  const fix = (root) => {
    root.querySelectorAll('div[aria-label]:not([role])').forEach((el) => el.setAttribute('role', 'img'));
    root.querySelectorAll('button[aria-label]').forEach((el) => {
      const shown = (el.innerText || '').replace(/\\s+/g, ' ').trim();
      const name = el.getAttribute('aria-label') || '';
      // The words shown come first in the name, Gradio's own ("Thumbnail 1 of 3") after them.
      if (shown.length > 3 && !name.toLowerCase().includes(shown.toLowerCase()))
        el.setAttribute('aria-label', `${shown} · ${name}`);
    });
  };
  // Fixed in the observer's own callback: it runs before any other task (a screen reader's
  // read of the page, a check), so the page is never seen with Gradio's markup unfixed.
  const start = () => {
    fix(document);
    new MutationObserver(() => fix(document)).observe(document.body, {subtree: true, childList: true, attributes: true, attributeFilter: ['aria-label']});
  };
  if (document.body) start(); else document.addEventListener('DOMContentLoaded', start);

  // A visitor who asked their system for less motion: a finished video waits on its first frame
  // until they press play (Gradio's players start themselves once loaded, and loop forever).
  // A play they asked for goes ahead: one within two seconds of a press or a key inside the
  // video's own block (its player's button, the compare view's "Play together").
  // The play event reaches the page a task after playback began, and a busy page lets the video
  // run on meanwhile: one never played at the visitor's asking goes back to its first frame.
  const still = window.matchMedia('(prefers-reduced-motion: reduce)');
  const played = new WeakSet();
  let pressed = {at: -Infinity, on: null};
  const press = (event) => { pressed = {at: performance.now(), on: event.target}; };
  document.addEventListener('pointerdown', press, true);
  document.addEventListener('keydown', press, true);
  document.addEventListener('play', (event) => {
    const video = event.target;
    if (!still.matches || !(video instanceof HTMLVideoElement)) return;
    const block = video.closest('.block, [id]') || video.parentElement;
    const asked = performance.now() - pressed.at < 2000 && pressed.on instanceof Node && block.contains(pressed.on);
    if (asked) { played.add(video); return; }
    video.autoplay = false;
    video.pause();
    if (!played.has(video)) video.currentTime = 0;
  }, true);
})();
</script>"""


# Where Gradio's own queue holds a run before its handler starts (a second film while the first
# is made, or more callers than the line lets in at once), the run's status still says its place
# in the line's words and markup (status_board.place_in_line), not Gradio's hidden counter. The
# page hears Gradio's place ("estimation": rank, rank_eta) on the queue's event stream: a copy of
# that stream is read here, and each event is matched to the status it writes to by its
# dependency's outputs in the page's config. Runs ahead are Gradio's place, plus for a run (not a
# film) the line's places and slots it lets in first. The estimate is Gradio's own, from how long
# those events have taken in this app; before it has learned one, the usual run's time per slot,
# or the pace of submits when that is slower (Bronze: one every 30 s).
_QUEUE_PLACE_HEAD = r"""<script>
(() => {
  const STATUS_IDS = ['status', 'film-status', 'variations-status'];
  const LINE = __LINE__;
  const fnOf = new Map();      // event id -> the dependency (fn_index) it runs
  const early = new Map();     // event id -> a place heard before the join's answer was read
  const shown = new Map();     // event id -> the place element written into its status
  const about = (s) => s < 55 ? `${Math.max(5, 5 * Math.round(s / 5))} s` : `${Math.max(1, Math.round(s / 60))} min`;
  const statusOf = (fn) => {
    const config = window.gradio_config;
    const dep = config && config.dependencies.find((d) => d.id === fn);
    if (!dep) return null;
    for (const id of dep.outputs) {
      const component = config.components.find((c) => c.id === id);
      const elemId = component && component.props && component.props.elem_id;
      if (STATUS_IDS.includes(elemId)) return document.getElementById(elemId);
    }
    return null;
  };
  const show = (eventId, rank, eta) => {
    if (!fnOf.has(eventId)) { early.set(eventId, [rank, eta]); return; }
    const box = statusOf(fnOf.get(eventId));
    if (!box) return;
    const ahead = rank + (LINE.let_in[box.id] || 0);
    const seconds = (typeof eta === 'number' && eta >= 0) ? eta : (ahead + 1) * Math.max(LINE.run_s / LINE.slots, LINE.every_s);
    let place = shown.get(eventId);
    if (!place || !place.isConnected) {
      place = document.createElement('p');
      place.className = 'queue-place';
      place.setAttribute('role', 'status');
      place.dataset.heldBy = 'gradio';
      (box.querySelector('.prose') || box).prepend(place);
      shown.set(eventId, place);
    }
    place.dataset.queuePlace = String(ahead);
    place.dataset.queueEstimateS = String(Math.round(seconds));
    place.textContent = `${ahead === 0 ? 'You are next' : `${ahead} ahead of you`} · about ${about(seconds)}`;
  };
  const started = (eventId) => {
    early.delete(eventId);
    const place = shown.get(eventId);
    if (place) place.remove();
    shown.delete(eventId);
  };
  const heard = (message) => {
    if (!message || !message.event_id) return;
    if (message.msg === 'estimation') { if (typeof message.rank === 'number') show(message.event_id, message.rank, message.rank_eta); }
    else if (message.msg !== 'heartbeat') started(message.event_id);
  };
  const listen = async (stream) => {
    const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const {value, done} = await reader.read();
      if (done) return;
      buffer += value.replace(/\r\n/g, '\n');
      let cut;
      while ((cut = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        for (const row of block.split('\n')) {
          if (!row.startsWith('data:')) continue;
          try { heard(JSON.parse(row.slice(5))); } catch (e) { /* not one of the queue's messages */ }
        }
      }
    }
  };
  const urlOf = (input) => typeof input === 'string' ? input : (input && input.url) || String(input);
  const passOn = window.fetch.bind(window);
  window.fetch = async (input, init) => {
    const url = urlOf(input);
    if (url.includes('/queue/join')) {
      let fn;
      try { fn = JSON.parse(init && typeof init.body === 'string' ? init.body : '{}').fn_index; } catch (e) { fn = undefined; }
      const answer = await passOn(input, init);
      if (typeof fn === 'number') answer.clone().json().then((body) => {
        if (!body || !body.event_id) return;
        fnOf.set(body.event_id, fn);
        const heardEarly = early.get(body.event_id);
        if (heardEarly) { early.delete(body.event_id); show(body.event_id, ...heardEarly); }
      }).catch(() => {});
      return answer;
    }
    if (url.includes('/queue/data')) {
      const answer = await passOn(input, init);
      if (!answer.ok || !answer.body) return answer;
      const [ours, theirs] = answer.body.tee();
      listen(ours).catch(() => {});
      return new Response(theirs, {status: answer.status, statusText: answer.statusText, headers: answer.headers});
    }
    return passOn(input, init);
  };
})();
</script>"""


def queue_place_head(run_s: float, slots: int, line_places: int, submits_per_minute: float = 0.0) -> str:
    """The page's script that shows a place in Gradio's own queue in the status (see above):
    `run_s` a run's usual time, `slots` the account's, `line_places` the line's length,
    `submits_per_minute` the account's pace (0: not paced)."""
    let_in = {name: line_places + slots for name in ("status", "variations-status")}
    every_s = round(60.0 / submits_per_minute, 1) if submits_per_minute > 0 else 0.0
    line = json.dumps({"run_s": round(max(1.0, run_s), 1), "slots": max(1, int(slots)), "every_s": every_s, "let_in": let_in})
    return _QUEUE_PLACE_HEAD.replace("__LINE__", line)
