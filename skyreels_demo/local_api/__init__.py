"""The built-in WaveSpeed-compatible backend (being split into modules: see backend.py)."""

from skyreels_demo.local_api.backend import Faults, LocalBackend, TaskRecord, TaskTiming, serve

__all__ = ["Faults", "LocalBackend", "TaskRecord", "TaskTiming", "serve"]
