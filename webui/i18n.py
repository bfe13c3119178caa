"""English and Russian (Flask-Babel), chosen per user.

Catalogs are kept as ``.po`` source only: every ``translations/<lang>/**/*.po`` file (one per
area, so helpers do not edit each other's catalog) is merged and compiled to ``.mo`` with
Babel's own Python API when the application starts, into a cache directory. A clean checkout
works without ``pybabel``.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import g, request, session
from flask_babel import Babel

HERE = Path(__file__).resolve().parent
SOURCE_DIR = HERE / "translations"
LANGUAGES = ("en", "ru")


def _po_files(lang: str) -> list[Path]:
    return sorted((SOURCE_DIR / lang).rglob("*.po")) if (SOURCE_DIR / lang).is_dir() else []


def compile_catalogs(out_root: str | None = None) -> str:
    """Compile the merged ``.po`` files of each language; returns the translations directory."""
    digest = hashlib.sha256()
    for lang in LANGUAGES:
        for po in _po_files(lang):
            digest.update(str(po.relative_to(SOURCE_DIR)).encode())
            digest.update(po.read_bytes())
    if out_root is None:
        out_root = os.path.join(tempfile.gettempdir(), f"calltracking-i18n-{os.getuid()}")
    target = Path(out_root) / digest.hexdigest()[:16]
    for lang in LANGUAGES:
        files = _po_files(lang)
        if not files:
            continue
        mo = target / lang / "LC_MESSAGES" / "messages.mo"
        if mo.exists():
            continue
        merged = Catalog(locale=lang)
        for po in files:
            with open(po, "rb") as fh:
                cat = read_po(fh, locale=lang)
            for msg in cat:
                if msg.id and msg.string and not msg.fuzzy:
                    merged.add(msg.id, msg.string)
        mo.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=mo.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            write_mo(fh, merged)
        os.replace(tmp, mo)
    return str(target)


def select_locale() -> str:
    lang = session.get("lang")
    if lang in LANGUAGES:
        return lang
    user = g.get("user")
    if user is not None and user.language in LANGUAGES:
        return user.language
    from webui.context import config

    default = config().general.language
    if request and not session.get("uid"):
        best = request.accept_languages.best_match(LANGUAGES)
        return best or default
    return default


def init_app(app, config) -> None:
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = compile_catalogs()
    app.config["BABEL_DEFAULT_LOCALE"] = config.general.language
    Babel(app, locale_selector=select_locale)

    @app.context_processor
    def _langs():
        from flask_babel import get_locale

        return {"languages": LANGUAGES, "current_language": str(get_locale() or "en")}
