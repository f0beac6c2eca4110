"""Everything Gradio and FastAPI: the page (one function per tab, then the wiring), handlers,
the status board, MCP, the door, the server. Every reach into Gradio's internals lives in
gradio_compat.py, each with its test."""
