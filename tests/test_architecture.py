"""The layout rules of the code, read from the source (AST only: nothing is imported).

* only the composition root (``calltracking/app.py``) and the CLI (``calltracking/cli/``)
  import the adapters ``agi``, ``ami_listener`` and ``webui``;
* the adapters never import each other;
* no import cycle between the modules of ``calltracking``, ``agi``, ``ami_listener`` and
  ``webui`` — an import inside a function counts like one at the top of the module;
* no module of ``calltracking/`` is longer than :data:`MAX_LINES` lines;
* nothing in the repository reads the directory ``shared`` beside the checkout.
"""
from __future__ import annotations

import ast
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("calltracking", "agi", "ami_listener", "webui")
ADAPTERS = ("agi", "ami_listener", "webui")
#: may import the adapters: they wire the services together
COMPOSITION_ROOTS = ("calltracking.app", "calltracking.cli")
MAX_LINES = 450


@dataclass(frozen=True)
class Import:
    source: str       # the importing module
    target: str       # the imported module (one of ours)
    line: int

    def __str__(self):
        return f"{module_path(self.source)}:{self.line} imports {self.target}"


def module_path(module: str) -> str:
    path = ROOT.joinpath(*module.split("."))
    return str((path / "__init__.py" if path.is_dir() else path.with_suffix(".py")).relative_to(ROOT))


def _modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module of our packages: dotted name -> file."""
    out = {}
    for pkg in PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _imported_names(tree: ast.AST, module: str, is_package: bool):
    """(dotted name, line) of every import anywhere in the module: top level, in functions, under
    ``if TYPE_CHECKING:``, and ``importlib.import_module("literal")``. ``from a import b`` gives
    ``a.b``: the module ``a.b`` if there is one, else a name in ``a``."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                yield f"{base}.{alias.name}", node.lineno
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and ((isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                   or (isinstance(node.func, ast.Name) and node.func.id in ("import_module", "__import__")))):
            yield node.args[0].value, node.lineno


def import_graph(root: Path = ROOT) -> list[Import]:
    """Every import of one of our modules by another: the longest module name the imported name
    starts with (importing ``a.b`` runs ``a/__init__.py`` too, which is not counted: a package
    that re-exports its modules is not a cycle)."""
    modules = _modules(root)
    edges = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        seen = set()
        for name, line in _imported_names(tree, module, path.name == "__init__.py"):
            target = name
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != module and (target, line) not in seen:
                seen.add((target, line))
                edges.append(Import(module, target, line))
    return edges


def _top(module: str) -> str:
    return module.partition(".")[0]


def _is_root(module: str) -> bool:
    return any(module == r or module.startswith(r + ".") for r in COMPOSITION_ROOTS)


def adapter_imports_outside_roots(edges: list[Import]) -> list[str]:
    return [str(e) for e in edges
            if _top(e.source) == "calltracking" and _top(e.target) in ADAPTERS and not _is_root(e.source)]


def adapters_importing_each_other(edges: list[Import]) -> list[str]:
    return [str(e) for e in edges
            if _top(e.source) in ADAPTERS and _top(e.target) in ADAPTERS and _top(e.source) != _top(e.target)]


def _components(nodes, succ) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = 0
    for start in nodes:
        if start in index:
            continue
        work = [(start, iter(succ.get(start, ())))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(succ.get(w, ()))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def _cycles_in(comp: list[str], succ, limit: int = 20) -> list[list[str]]:
    """The elementary cycles of one component (each starting at its smallest module), at most ``limit``."""
    members, found = set(comp), []
    for start in comp:
        path, blocked = [start], {start}

        def walk(v):
            for w in sorted(succ.get(v, ())):
                if len(found) >= limit:
                    return
                if w == start:
                    found.append(path + [start])
                elif w in members and w > start and w not in blocked:
                    path.append(w)
                    blocked.add(w)
                    walk(w)
                    blocked.discard(w)
                    path.pop()

        walk(start)
    return found


def import_cycles(edges: list[Import]) -> list[str]:
    """One report per cycle: the modules in order, each step with its file and line."""
    succ: dict[str, set] = {}
    where: dict[tuple[str, str], list[int]] = {}
    for e in edges:
        succ.setdefault(e.source, set()).add(e.target)
        where.setdefault((e.source, e.target), []).append(e.line)
    reports = []
    for comp in _components(sorted(succ), succ):
        for cycle in _cycles_in(comp, succ):
            steps = [f"{module_path(a)}:{','.join(map(str, sorted(where[(a, b)])))} -> {b}"
                     for a, b in zip(cycle, cycle[1:])]
            reports.append("cycle " + " -> ".join(cycle) + "\n    " + "\n    ".join(steps))
    return reports


def long_core_files(root: Path = ROOT) -> list[str]:
    out = []
    for path in sorted((root / "calltracking").rglob("*.py")):
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > MAX_LINES:
            out.append(f"{path.relative_to(root)}: {n} lines")
    return out


#: a path into the directory ``shared`` beside the checkout (one or more ``../`` before it, then a
#: ``/``, a blank, a quote or the end of the line); a mention in backticks (prose saying it must
#: not be used) is not one
OUTSIDE = re.compile(r"(\.\./)+shared(?![\w`.-])")
SHARED = "../" + "shared"      # spelt in two pieces, so that this file does not match itself
#: the one exception: CI's entry point may install the prebuilt Asterisk kept beside the checkout
CI_ASTERISK = (".ci/run", re.compile(r"(\.\./)+shared/asterisk/install\.sh"))


def files_reaching_outside(root: Path = ROOT) -> list[str]:
    """Lines of the tracked files, and of new ones not ignored, with a path into :data:`SHARED`."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                            cwd=root, capture_output=True, check=True).stdout.decode().split("\0")
    out = []
    for name in filter(None, listed):
        path = root / name
        if not path.is_file():
            continue                     # deleted in the working tree
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue                     # binary files
        for lineno, line in enumerate(text.splitlines(), 1):
            if name == CI_ASTERISK[0] and CI_ASTERISK[1].search(line) and not \
                    OUTSIDE.search(CI_ASTERISK[1].sub("", line)):
                continue
            if OUTSIDE.search(line):
                out.append(f"{name}:{lineno}: {line.strip()}")
    return out


@pytest.fixture(scope="module")
def edges():
    return import_graph()


def test_the_graph_sees_imports(edges):
    """Guards the other tests against an empty graph: known imports are found, at any depth."""
    found = {(e.source, e.target) for e in edges}
    assert ("calltracking.app", "webui.server") in found          # inside a method
    assert ("calltracking.entities", "calltracking.settings_rules") in found
    assert ("webui.settings_specs", "calltracking.entities") in found


def test_only_the_composition_root_imports_adapters(edges):
    bad = adapter_imports_outside_roots(edges)
    assert not bad, "only calltracking/app.py and calltracking/cli/ may import agi, ami_listener, webui:\n" \
        + "\n".join(bad)


def test_adapters_do_not_import_each_other(edges):
    bad = adapters_importing_each_other(edges)
    assert not bad, "agi, ami_listener and webui must not import each other:\n" + "\n".join(bad)


def test_no_import_cycles(edges):
    cycles = import_cycles(edges)
    assert not cycles, f"{len(cycles)} import cycle(s):\n" + "\n".join(cycles)


def test_core_files_are_short():
    long = long_core_files()
    assert not long, f"files in calltracking/ over {MAX_LINES} lines (split them along concepts):\n" \
        + "\n".join(long)


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs a git checkout (git ls-files)")
def test_nothing_reaches_outside_the_repository():
    found = files_reaching_outside()
    assert not found, f"the repository must not read {SHARED} (everything it needs is inside it):\n" \
        + "\n".join(found)
