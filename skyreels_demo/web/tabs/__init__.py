"""The page's tabs, one module each: what each draws, top to bottom, and the components it hands
back as a small dataclass. Layout only: page.py assembles the tabs and page_wiring.py attaches the
handlers, so a tab reads like the screen it draws."""
