"""The package's layering, read from its source with `ast` (imports inside functions included):
commands are thin and sit on top of a library that never imports them; imports have no cycle."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "tfinpaint"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(tree: ast.AST, name: str, is_package: bool, known: set[str]) -> set[str]:
    """The package's modules that `tree` imports, resolved to the longest known module name."""
    package = name if is_package else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            targets.add(base)
            targets.update(f"{base}.{alias.name}" for alias in node.names)
    resolved = set()
    for target in targets:
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name:
            resolved.add(target)
    return resolved


def is_command(tree: ast.AST, path: Path) -> bool:
    if path.name == "__main__.py":
        return True
    return any(isinstance(node, ast.If) and "__main__" in ast.unparse(node.test)
               and "__name__" in ast.unparse(node.test) for node in ast.walk(tree))


def package_graph(root: Path = PACKAGE):
    """(imports by module, command modules, package modules) of the package under `root`."""
    files = [path for path in root.rglob("*.py") if "__pycache__" not in path.parts]
    trees = {path: ast.parse(path.read_text()) for path in files}
    known = {module_name(path) for path in files}
    graph, commands, packages = {}, set(), set()
    for path, tree in trees.items():
        name = module_name(path)
        graph[name] = imported_modules(tree, name, path.name == "__init__.py", known)
        if path.name == "__init__.py":
            packages.add(name)
        if is_command(tree, path):
            commands.add(name)
    # A package's __main__ delegating to one of its modules makes that module a command.
    for command in [c for c in commands if c.endswith(".__main__")]:
        commands |= graph[command] - {command.rpartition(".")[0]}
    return graph, commands, packages


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph.get(node, ()):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return cycles


def layering_problems(root: Path = PACKAGE) -> dict[str, list]:
    graph, commands, packages = package_graph(root)
    # A package's __init__ re-exporting its own modules is its face, not a layer.
    without_packages = {module: targets - packages for module, targets in graph.items()
                        if module not in packages}
    return {
        "cycles": find_cycles(without_packages),
        "library imports a command": sorted(
            f"{module} -> {target}" for module, targets in graph.items() for target in targets
            if target in commands and module not in commands and module not in packages),
        "command imports a command": sorted(
            f"{module} -> {target}" for module, targets in graph.items() for target in targets
            if target in commands and module in commands and not module.endswith(".__main__")),
    }


def test_the_package_is_layered():
    problems = layering_problems()
    assert problems == {"cycles": [], "library imports a command": [],
                        "command imports a command": []}


def test_every_public_command_is_seen_as_one():
    _, commands, _ = package_graph()
    for name in ("train", "infer", "evaluate", "propagate", "export.cli", "serve",
                 "serving.client"):
        assert f"tfinpaint.{name}" in commands


def test_the_mask_family_is_entered_through_spread():
    # tfinpaint.masking's other modules are its rooms: the rest of the package calls `spread`.
    graph, _, _ = package_graph()
    entered = sorted(f"{module} -> {target}" for module, targets in graph.items()
                     for target in targets if target.startswith("tfinpaint.masking.")
                     and not module.startswith("tfinpaint.masking.")
                     and target != "tfinpaint.masking.spread")
    assert entered == []


def test_filling_needs_no_training_code():
    # What a fill, an export or a server loads: the network, the fill, input and output.
    graph, _, _ = package_graph()
    families = ("tfinpaint.model", "tfinpaint.fill", "tfinpaint.io", "tfinpaint.evaluation",
                "tfinpaint.export", "tfinpaint.serving", "tfinpaint.infer", "tfinpaint.serve")
    reached = sorted(f"{module} -> {target}" for module, targets in graph.items()
                     for target in targets if module.startswith(families)
                     and target.startswith("tfinpaint.fitting"))
    assert reached == []


def test_the_check_finds_what_it_looks_for(tmp_path):
    # A planted package: a cycle, a library importing a command, a command importing another.
    package = tmp_path / "tfinpaint"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from tfinpaint import b\n")
    (package / "b.py").write_text("def f():\n    from tfinpaint.a import x\n")
    (package / "lib.py").write_text("import tfinpaint.cmd\n")
    (package / "cmd.py").write_text("from tfinpaint import other\nif __name__ == '__main__':\n    pass\n")
    (package / "other.py").write_text("if __name__ == '__main__':\n    pass\n")
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        problems = layering_problems(package)
    finally:
        ROOT = saved
    assert problems["cycles"] == [["tfinpaint.a", "tfinpaint.b"]]
    assert problems["library imports a command"] == ["tfinpaint.lib -> tfinpaint.cmd"]
    assert problems["command imports a command"] == ["tfinpaint.cmd -> tfinpaint.other"]


def test_no_sys_path_edits_and_no_machine_paths():
    found = []
    for path in ROOT.rglob("*"):
        if not path.is_file() or any(part.startswith(".") or part in ("__pycache__", "build")
                                     for part in path.relative_to(ROOT).parts):
            continue
        if path.suffix not in (".py", ".yaml", ".cfg", ".toml", ".md", ".sh", ".txt"):
            continue
        text = path.read_text(errors="replace")
        if path.suffix == ".py" and path.name != Path(__file__).name and re.search(
                r"sys\.path\.(insert|append)", text):
            found.append(f"{path.relative_to(ROOT)}: edits sys.path")
        for match in re.finditer(r"[\"'(\s](/(?:work|home|root|Users)/[^\s\"')]+)", text):
            found.append(f"{path.relative_to(ROOT)}: {match.group(1)}")
    assert found == []
