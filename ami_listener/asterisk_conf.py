"""Asterisk's configuration files as Asterisk reads them: sections, templates, includes.

pyst2's ``asterisk.config`` reads one file, without includes or templates; hence this.
"""
from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, field
from typing import Optional


@dataclass
class AsteriskConf:
    """Sections of one Asterisk configuration file and its includes, in file order."""

    sections: dict = field(default_factory=dict)     # name -> [(key, value)]
    files: dict = field(default_factory=dict)        # name -> file that opened the section
    templates: set = field(default_factory=set)

    def find(self, name: str) -> Optional[str]:
        """The section ``name`` (case-insensitive, like Asterisk's user lookup), templates excluded."""
        for sec in self.sections:
            if sec.lower() == name.lower() and sec not in self.templates:
                return sec
        return None

    def value(self, section: Optional[str], key: str) -> Optional[str]:
        """The last ``key`` of ``section`` (Asterisk keeps the last one), or None."""
        out = None
        for k, v in self.sections.get(section, []) if section else []:
            if k.lower() == key:
                out = v
        return out


_SECTION_RE = re.compile(r"^\[([^\]]+)\]\s*(?:\(([^)]*)\))?$")
_DIRECTIVE_RE = re.compile(r'^#\s*(include|tryinclude)\s+["<]?([^">]+)[">]?\s*$', re.I)


def read_asterisk_conf(path: str) -> AsteriskConf:
    """Asterisk's configuration file ``path`` with its ``#include`` / ``#tryinclude`` files.

    The syntax of Asterisk's main/config.c: ``;`` starts a comment (``\\;`` is a literal ``;``),
    ``;--`` … ``--;`` is a block comment, ``key = value`` or ``key => value``; ``[name](!)`` is a
    template that ``[other](name)`` inherits; ``[name](+)`` adds to an earlier ``[name]``. An
    include path is relative to the directory of ``path`` (Asterisk's configuration directory) and
    may be a glob. Raises OSError when ``path`` or an ``#include`` (not a ``#tryinclude``) cannot
    be read.
    """
    conf = AsteriskConf()
    _read_into(conf, path, os.path.dirname(path) or ".", [], must=True)
    return conf


def _read_into(conf: AsteriskConf, path: str, base: str, stack: list, must: bool) -> None:
    if path in stack or len(stack) > 10:       # an include loop; Asterisk refuses it too
        return
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        if must:
            raise
        return
    stack = stack + [path]
    current, block = None, 0
    for raw in lines:
        line = _strip_comment(raw, block)
        block = line[1]
        line = line[0].strip()
        if not line:
            continue
        m = _DIRECTIVE_RE.match(line)
        if m:
            target = m.group(2).strip()
            target = target if os.path.isabs(target) else os.path.join(base, target)
            matches = sorted(glob.glob(target)) if glob.has_magic(target) else [target]
            for inc in matches:
                _read_into(conf, inc, base, stack, must and m.group(1).lower() == "include"
                           and not glob.has_magic(target))
            continue
        if line.startswith("#"):                  # #exec and the like: not followed
            continue
        m = _SECTION_RE.match(line)
        if m:
            current = m.group(1).strip()
            opts = [o.strip() for o in (m.group(2) or "").split(",") if o.strip()]
            if "+" in opts and current in conf.sections:
                continue
            items = []
            for o in opts:
                if o == "!":
                    conf.templates.add(current)
                elif o != "+":
                    items += conf.sections.get(o, [])
            conf.sections[current] = list(items)
            conf.files[current] = path
            continue
        if current is None:
            continue
        key, sep, value = line.partition("=")
        if sep:
            conf.sections[current].append((key.strip(), value.lstrip(">").strip()))


def _strip_comment(line: str, block: int) -> tuple[str, int]:
    """``line`` without comments, and the block-comment depth after it."""
    out, i = [], 0
    while i < len(line):
        if block:
            if line.startswith("--;", i):
                block, i = block - 1, i + 3
            elif line.startswith(";--", i):
                block, i = block + 1, i + 3
            else:
                i += 1
            continue
        c = line[i]
        if c == "\\" and line.startswith(";", i + 1):
            out.append(";")
            i += 2
        elif line.startswith(";--", i):
            block, i = 1, i + 3
        elif c == ";":
            break
        else:
            out.append(c)
            i += 1
    return "".join(out), block


def ast_true(v: Optional[str]) -> bool:
    """Asterisk's ast_true()."""
    return (v or "").strip().lower() in ("yes", "true", "y", "t", "1", "on")
