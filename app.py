"""SkyReels V1 Studio: `python app.py`, locally and on a Hugging Face Space."""

import sys

from skyreels_demo.config import BadSetting, Settings

if __name__ == "__main__":
    try:
        # A mistyped environment variable is refused before Gradio is imported: at once, not in
        # the seconds the import takes. Say which, start nothing.
        settings = Settings.from_env()
        from skyreels_demo.web.page import main

        main(settings)
    except BadSetting as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
