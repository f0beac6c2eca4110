"""The package's plan, read from its source: rooms as folders, arrows pointing down, Gradio in
web/ alone, each module and function small enough to read (issue 27; DESIGN.md's Layout). That
the model is named in few places is test_one_path.py's."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "skyreels_demo"
CORE = {"config", "models", "errors", "status", "times"}
# Which rooms each room may import, besides the core values (and itself).
MAY_USE = {
    "core": set(),
    "local_api": set(),
    "wavespeed": set(),
    "images": set(),
    "store": set(),
    "studio": {"wavespeed", "images", "store", "local_api"},
    "web": {"studio", "wavespeed", "images", "store", "local_api"},
    "cli": {"studio", "wavespeed", "images", "store", "local_api", "web"},
}
GUI = ("gradio", "gradio_client", "fastapi", "starlette", "uvicorn")


def modules() -> dict[str, Path]:
    """Every module as its dotted name under skyreels_demo."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        found[".".join(parts)] = path
    return found


def room_of(name: str) -> str:
    head = name.split(".")[0]
    if head in ("cli", "__main__"):
        return "cli"
    if head in CORE or head == "__init__":
        return "core"
    return head


def imports_of(name: str, path: Path) -> set[str]:
    """Every module `name` imports (absolute, dotted), nested imports included."""
    package = name.rpartition(".")[0] if path.name != "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = ["skyreels_demo", *package.split(".")] if package else ["skyreels_demo"]
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(parts + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def ours(imported: str) -> str | None:
    """The module of ours an import names (skyreels_demo.x.y -> x.y), or None."""
    if not imported.startswith("skyreels_demo."):
        return None
    rest = imported.removeprefix("skyreels_demo.")
    known = modules()
    while rest and rest not in known and f"{rest}.__init__" not in known:
        rest = rest.rpartition(".")[0]
    return rest or None


def test_the_import_arrows_point_down() -> None:
    wrong = []
    for name, path in modules().items():
        room = room_of(name)
        allowed = MAY_USE[room] | {room, "core"}
        for imported in imports_of(name, path):
            target = ours(imported)
            if target is not None and room_of(target) not in allowed:
                wrong.append(f"{name} ({room}) imports {target} ({room_of(target)})")
    assert not wrong, "imports against the arrows:\n" + "\n".join(sorted(set(wrong)))


def test_the_core_values_import_none_of_the_rooms() -> None:
    for name, path in modules().items():
        if room_of(name) == "core":
            reached = {ours(i) for i in imports_of(name, path)} - {None}
            assert all(room_of(t) == "core" for t in reached), f"{name} reaches {reached}"


def test_gradio_and_http_servers_are_imported_only_under_web() -> None:
    outside = []
    for name, path in modules().items():
        if room_of(name) in ("web", "local_api"):  # the offline backend is a FastAPI app of its own
            continue
        for imported in imports_of(name, path):
            if imported.split(".")[0] in GUI:
                outside.append(f"{name} imports {imported}")
    # Gradio itself only in web/, the backend included.
    for name, path in modules().items():
        if room_of(name) == "local_api":
            outside += [f"{name} imports {i}" for i in imports_of(name, path) if i.split(".")[0] in ("gradio", "gradio_client")]
    assert not outside, "\n".join(sorted(set(outside)))


def test_the_package_top_holds_a_few_core_values() -> None:
    top = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__", "cli"))
    assert len(top) <= 8, top
    assert set(top) <= CORE, top
    rooms = sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists())
    assert rooms == ["cli", "images", "local_api", "store", "studio", "wavespeed", "web"]


def test_no_module_over_400_lines_and_no_function_over_80() -> None:
    long_modules, long_functions = [], []
    for name, path in modules().items():
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) > 400:
            long_modules.append(f"{name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > 80:
                    long_functions.append(f"{name}.{node.name}: {length} lines")
    assert not long_modules and not long_functions, "\n".join(long_modules + long_functions)
