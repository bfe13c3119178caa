"""calltracking/jobs in layers: each module imports only the jobs modules below it.

Deliveries: rules -> notify, integrations (which never import each other) -> outbox -> transport.
Recordings: recordings, recording_retention -> recording_files, recording_audio -> conversation;
transcripts -> recording_files. The scheduler
above them all, its doctor checks on top. Read from the source (nothing imported).
"""
from __future__ import annotations

import ast
from pathlib import Path

JOBS = Path(__file__).resolve().parents[2] / "calltracking" / "jobs"

#: module -> the jobs modules it may import
MAY_IMPORT = {
    "transport": set(),
    "outbox": {"transport"},
    "notify": set(),
    "integrations": set(),
    "rules": {"notify", "integrations", "outbox", "transport"},   # transport: check_rule's host policy
    "recording_files": set(),
    "conversation": set(),
    "recording_audio": {"conversation"},
    "transcripts": {"recording_files"},
    "recordings": {"recording_files", "recording_audio"},
    "recording_retention": {"recording_files"},
    "scheduler": {"outbox", "rules", "recordings", "recording_retention", "transcripts"},
    "doctor": {"scheduler"},
}


def jobs_imports(path: Path) -> set[str]:
    """The calltracking.jobs modules ``path`` imports, at module or function level."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module == "calltracking.jobs":
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("calltracking.jobs."):
            found.add(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[2] for a in node.names if a.name.startswith("calltracking.jobs.")}
    return found


def test_each_module_imports_only_the_layers_below_it():
    modules = {p.stem for p in JOBS.glob("*.py")} - {"__init__"}
    assert modules == set(MAY_IMPORT), "a module was added or removed: give it its place in MAY_IMPORT"
    wrong = {m: sorted(jobs_imports(JOBS / f"{m}.py") - MAY_IMPORT[m]) for m in sorted(modules)}
    assert {m: w for m, w in wrong.items() if w} == {}


def test_the_check_sees_a_planted_import(tmp_path):
    planted = tmp_path / "integrations.py"
    planted.write_text((JOBS / "integrations.py").read_text(encoding="utf-8")
                       + "\n\ndef f():\n    from calltracking.jobs.notify import rule_message\n")
    assert "notify" in jobs_imports(planted) - MAY_IMPORT["integrations"]
