"""The documentation points at things that exist.

In README.md and docs/*.md (code blocks aside):

- every relative link (``[text](path#anchor)``, images too) names an existing file, and its
  anchor, where given, is a heading of that file (GitHub's slugs);
- every path of the repository written as inline code (`calltracking/dni/guard.py`,
  `tests/live/`, `dialplan/*.conf`, also inside a command) exists (a glob matches something);
- every dotted name of our packages written as inline code
  (`calltracking.reports.rollup.refresh_rollups()`) names a module, and the attribute after it,
  if any, is defined there (read with ``ast``: nothing is imported);
- every page of docs/ is listed in README.md, and the two commands stay at the top of README.md;
- the text speaks of the project alone: no ``../shared``, no design notes or tickets.

Pure text: no database, no network, well under a second.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# Top-level folders of the repository: a code span starting with one of them is a path.
REPO_DIRS = ("calltracking", "agi", "ami_listener", "webui", "bench", "tests", "dialplan",
             "migrations", "docs")
PACKAGES = ("calltracking", "agi", "ami_listener", "webui")

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.S)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
PATH = re.compile(r"^(?:%s)/[^\s`'\"]*$" % "|".join(REPO_DIRS))
DOTTED = re.compile(r"^(?:%s)(?:\.[A-Za-z_]\w*)+(?:\(\))?$" % "|".join(PACKAGES))
FILE_NAME = re.compile(r"\.(?:service|db|conf|ini|log|csv|json|md)$")   # `calltracking.service`: a unit


def prose(text: str) -> str:
    """The text with fenced code blocks blanked (line numbers kept)."""
    out, fence = [], None
    for line in text.split("\n"):
        m = FENCE.match(line)
        if fence is None and m:
            fence = m.group(1)[0] * len(m.group(1))
            out.append("")
        elif fence is not None:
            if line.strip().startswith(fence) and not line.strip().strip(fence[0]):
                fence = None
            out.append("")
        else:
            out.append(line)
    return "\n".join(out)


def code_spans(text: str) -> list[tuple[int, str]]:
    """(line, content) of every inline code span of the prose."""
    return [(text.count("\n", 0, m.start()) + 1, m.group(2).strip())
            for m in CODE_SPAN.finditer(prose(text))]


def links(text: str) -> list[tuple[int, str]]:
    """(line, target) of every inline link or image of the prose, code spans aside."""
    body = CODE_SPAN.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), prose(text))
    return [(body.count("\n", 0, m.start()) + 1, m.group(1)) for m in LINK.finditer(body)]


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: the rendered text, lower case, punctuation but ``-`` and
    ``_`` dropped, spaces made ``-``."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)   # a link shows its text
    text = text.replace("`", "").replace("*", "")
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors of a page's headings; a repeated heading gets ``-1``, ``-2``... as on GitHub."""
    count: dict[str, int] = {}
    found: set[str] = set()
    for line in prose(path.read_text(encoding="utf-8")).split("\n"):
        m = HEADING.match(line)
        if m:
            base = slug(m.group(2))
            n = count.get(base, 0)
            count[base] = n + 1
            found.add(f"{base}-{n}" if n else base)
    return found


def defined_names(tree: ast.Module) -> dict[str, ast.AST]:
    names: dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names[node.name] = node
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                for n in ast.walk(t):
                    if isinstance(n, ast.Name):
                        names[n.id] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names[node.target.id] = node
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for a in node.names:
                names[(a.asname or a.name).split(".")[0]] = node
    return names


def dotted_problem(name: str, root: Path) -> str | None:
    """Why ``name`` (``pkg.module.attr``) names nothing in the repository, or None."""
    parts = name.removesuffix("()").split(".")
    for i in range(len(parts), 0, -1):
        base = root.joinpath(*parts[:i])
        module = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
        if module.is_file():
            rest = parts[i:]
            break
    else:
        return "no such package"
    if not rest:
        return None
    names = defined_names(ast.parse(module.read_text(encoding="utf-8")))
    node = names.get(rest[0])
    if node is None:
        return f"{rest[0]} is not defined in {module.relative_to(root)}"
    if len(rest) > 1 and isinstance(node, ast.ClassDef):
        members = defined_names(ast.Module(body=node.body, type_ignores=[]))
        if rest[1] not in members:
            return f"{rest[0]} has no {rest[1]}"
    return None


@dataclass
class Problem:
    page: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.page}:{self.line}: {self.what}"


def check(page: Path, root: Path = ROOT) -> list[Problem]:
    text = page.read_text(encoding="utf-8")
    name = str(page.relative_to(root))
    problems: list[Problem] = []
    for line, target in links(text):
        if SCHEME.match(target) or target.startswith("//"):
            continue                                      # http(s), mailto: not ours to check
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            problems.append(Problem(name, line, f"link to a missing file: {target}"))
        elif anchor and (dest.suffix != ".md" or anchor not in anchors(dest)):
            problems.append(Problem(name, line, f"link to a missing anchor: {target}"))
    for line, span in code_spans(text):
        for token in span.split():
            token = token.rstrip(",;:")
            if PATH.match(token):
                found = (list(root.glob(token.rstrip("/"))) if any(c in token for c in "*?[")
                         else [root / token] if (root / token).exists() else [])
                if not found or (token.endswith("/") and not found[0].is_dir()):
                    problems.append(Problem(name, line, f"no such path in the repository: {token}"))
            elif DOTTED.match(token) and not FILE_NAME.search(token):
                why = dotted_problem(token, root)
                if why:
                    problems.append(Problem(name, line, f"{token}: {why}"))
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_and_paths_exist(page):
    problems = check(page)
    assert not problems, "\n".join(map(str, problems))


def test_every_docs_page_is_listed_in_the_readme():
    listed = {(ROOT / t.partition("#")[0]).resolve() for _, t in links((ROOT / "README.md").read_text())}
    missing = [p.name for p in PAGES[1:] if p.resolve() not in listed]
    assert PAGES[1:] and not missing, f"docs pages not in README.md's index: {missing}"


def test_readme_opens_with_the_two_commands():
    head = (ROOT / "README.md").read_text(encoding="utf-8").split("\n")[:20]
    block = "\n".join(head)
    assert "sudo ./install.sh --start\n" in block and "\n./tests/run.sh\n" in block, block
    assert len((ROOT / "README.md").read_text(encoding="utf-8").split("\n")) <= 200


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_text_speaks_of_the_project_alone(page):
    text = page.read_text(encoding="utf-8")
    found = [m.group(0) for m in re.finditer(
        r"\.\./shared|DESIGN\.md|STYLE\.md|\bissues? *#? *\d|\bthe issue\b|\bissue's", text, re.I)]
    assert not found, f"{page.name}: {found}"


def test_the_checker_finds_what_is_wrong(tmp_path):
    """The checks above can fail: a page with one of each mistake gets one problem each."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "calltracking").mkdir()
    (tmp_path / "calltracking" / "__init__.py").write_text("")
    (tmp_path / "calltracking" / "real.py").write_text("def there():\n    pass\nclass K:\n    def m(self): ...\n")
    (tmp_path / "other.md").write_text("# Real heading\n\n## Twice\n\n## Twice\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n"
        "[ok](other.md#real-heading) [ok2](other.md#twice-1) [web](https://example.com/x) [self](#page)\n"
        "[gone](missing.md) [bad anchor](other.md#nowhere)\n"
        "`calltracking/real.py` `calltracking/real.py --flag` `calltracking/nope.py`\n"
        "`calltracking.real.there()` `calltracking.real.K.m` `calltracking.real.gone`\n"
        "`calltracking.nomod` `calltracking.real.K.nothing` `calltracking/*.py` `calltracking/*.txt`\n"
        "```sh\ncalltracking/inside-a-fence.py [x](fenced.md)\n```\n"
        "`[not a link](nowhere.md)`\n")
    got = sorted(p.what for p in check(page, tmp_path))
    assert got == sorted([
        "link to a missing file: missing.md",
        "link to a missing anchor: other.md#nowhere",
        "no such path in the repository: calltracking/nope.py",
        "calltracking.real.gone: gone is not defined in calltracking/real.py",
        "calltracking.nomod: nomod is not defined in calltracking/__init__.py",
        "calltracking.real.K.nothing: K has no nothing",
        "no such path in the repository: calltracking/*.txt",
    ]), got
