"""The page's look: Gradio's Soft theme in indigo, with every text and control colour dark
enough for WCAG AA (4.5:1 for text, 3:1 for controls) on the backgrounds it is drawn on.

Soft draws labels, the primary button and subdued text in indigo 500 and grey 400, which
measure 2.4:1 to 4.46:1 on its light backgrounds (axe-core's color-contrast rule); one shade or
two darker passes with room to spare and still reads as the same theme.
"""

from __future__ import annotations

import gradio as gr


def studio_theme() -> gr.themes.Base:
    """Soft, indigo, at AA contrast in light mode (dark mode keeps Soft's light-on-dark text)."""
    return gr.themes.Soft(primary_hue="indigo").set(
        # Grey 600 on the page's grey 50: about 7:1 (grey 400 was 2.4:1).
        body_text_color_subdued="*neutral_600",
        input_placeholder_color="*neutral_500",
        # Field labels: indigo 700 on indigo 100, about 6.6:1 (indigo 500 was 3.6:1).
        block_label_text_color="*primary_700",
        block_title_text_color="*primary_700",
        block_info_text_color="*neutral_600",
        # White on indigo 600 is 6.3:1 (on indigo 500 it was 4.46:1); hover darker, not lighter.
        button_primary_background_fill="*primary_600",
        button_primary_background_fill_hover="*primary_700",
        button_primary_border_color="*primary_600",
        button_primary_border_color_hover="*primary_700",
        checkbox_label_background_fill_selected="*primary_600",
        color_accent="*primary_600",
        slider_color="*primary_600",
    )
