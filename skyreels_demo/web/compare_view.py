"""Takes side by side: #compare's HTML (the videos, one control for all, what differs in words)
and the script that keeps them playing together. Separate from the takes' handlers
(ui_takes.py), which decide whose takes these are; this only draws them."""

from __future__ import annotations

import html
from urllib.parse import quote

from skyreels_demo.store.records import Run
from skyreels_demo.studio import differences, takes
from skyreels_demo.web.ui_notes import note

MIN_COMPARE, MAX_COMPARE = 2, 4

# Runs in the browser once, when #compare is drawn: one control (or the first video's own
# controls) plays, pauses and seeks every take; a tick pulls the others back onto the first.
COMPARE_JS = """
const videos = () => Array.from(element.querySelectorAll('video'));
const follow = (fn) => { const vs = videos(); if (vs.length) fn(vs[0], vs.slice(1)); };
const align = (lead, rest) => rest.forEach((v) => { v.currentTime = lead.currentTime; });
element.addEventListener('click', (event) => {
  const button = event.target.closest('[data-compare]');
  if (!button) return;
  follow((lead, rest) => {
    if (button.dataset.compare === 'play') { align(lead, rest); [lead, ...rest].forEach((v) => v.play().catch(() => {})); }
    if (button.dataset.compare === 'pause') { [lead, ...rest].forEach((v) => v.pause()); align(lead, rest); }
    if (button.dataset.compare === 'start') { lead.currentTime = 0; align(lead, rest); }
  });
});
element.addEventListener('input', (event) => {
  const slider = event.target.closest('[data-compare=seek]');
  if (!slider) return;
  follow((lead, rest) => { lead.currentTime = (lead.duration || 0) * slider.value / 1000; align(lead, rest); });
});
// The first video's own controls drive the rest (media events do not bubble: capture them).
element.addEventListener('play', (event) => follow((lead, rest) => {
  if (event.target === lead) { align(lead, rest); rest.forEach((v) => v.play().catch(() => {})); }
}), true);
element.addEventListener('pause', (event) => follow((lead, rest) => {
  if (event.target === lead) rest.forEach((v) => v.pause());
}), true);
element.addEventListener('seeked', (event) => follow((lead, rest) => {
  if (event.target === lead && rest.some((v) => Math.abs(v.currentTime - lead.currentTime) > 0.05)) align(lead, rest);
}), true);
setInterval(() => follow((lead, rest) => {
  const slider = element.querySelector('[data-compare=seek]');
  if (slider && lead.duration) slider.value = Math.round(1000 * lead.currentTime / lead.duration);
  if (lead.paused) return;
  const span = lead.duration || 0;
  rest.forEach((v) => {
    if (v.paused) v.play().catch(() => {});
    const drift = Math.abs(v.currentTime - lead.currentTime);
    // Near the loop's turn one has wrapped and the other not yet: that is no drift.
    if (drift > 0.08 && drift < span - 0.5) v.currentTime = lead.currentTime;
  });
}), 150);
"""


def compare_note(sentence: str) -> str:
    """#compare's content when there is nothing to compare yet: what to do, in a sentence."""
    return f'<p class="action-note" role="status">{html.escape(note(sentence))}</p>'


def _file_url(path: str) -> str:
    # Relative to the page, through Gradio's file route (videos are in its allowed paths).
    return "gradio_api/file=" + quote(path)


def compare_html(runs: list[Run], model) -> str:
    """#compare's content: the takes side by side, one control for all, what differs in words."""
    figures = []
    for number, run in enumerate(runs, start=1):
        prompt = takes.typed_prompt(run, model)
        short = prompt if len(prompt) <= 60 else prompt[:59] + "…"
        controls = " controls" if number == 1 else ""
        figures.append(
            f'<figure style="margin:0"><video src="{html.escape(_file_url(run.video_path))}" muted loop playsinline'
            f' preload="auto"{controls} data-seed="{run.seed}" style="width:100%;max-height:48vh;object-fit:contain;border-radius:6px;background:#000"'
            f' aria-label="Take {number}, seed {run.seed}"></video>'
            f'<figcaption style="font-size:0.9em;margin-top:4px"><strong>Take {number} · seed {run.seed}</strong>'
            f'{" ★" if run.kept else ""}<br>{html.escape(short)}</figcaption></figure>'
        )
    differing = "".join(f"<li>{html.escape(line)}</li>" for line in differences.in_words(runs, model))
    button = 'type="button" style="padding:6px 14px;border-radius:6px;border:1px solid #c7c9e6;background:#eef0ff;cursor:pointer"'
    return (
        '<div class="compare-takes">'
        '<div role="group" aria-label="Play the takes together" style="display:flex;flex-wrap:wrap;gap:8px;align-items:center;margin-bottom:10px">'
        f'<button {button} data-compare="play">▶ Play together</button>'
        f'<button {button} data-compare="pause">❚❚ Pause together</button>'
        f'<button {button} data-compare="start">Back to the start</button>'
        '<label style="display:flex;gap:6px;align-items:center;flex:1;min-width:180px">Seek all'
        ' <input type="range" data-compare="seek" min="0" max="1000" value="0" style="flex:1" aria-label="Seek every take"></label>'
        '</div>'
        # Side by side even on a phone (two across), which is the point of comparing.
        '<div style="display:grid;grid-template-columns:repeat(auto-fit,minmax(140px,1fr));gap:10px">'
        f'{"".join(figures)}</div>'
        f'<h4 style="margin:12px 0 4px">What differs</h4><ul class="compare-differences">{differing}</ul>'
        '</div>'
    )
