"""SkyReels V1 Studio: `python app.py`, locally and on a Hugging Face Space."""

import sys

from skyreels_demo.config import BadSetting
from skyreels_demo.web.page import main

if __name__ == "__main__":
    try:
        main()
    except BadSetting as exc:  # a mistyped environment variable: say which, start nothing
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
