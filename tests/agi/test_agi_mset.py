"""CT_* variables in one `EXEC MSet` round trip, with the one-by-one fallbacks (real socket)."""
from __future__ import annotations

from agi import protocol as p
from calltracking import entities as svc
from calltracking.db import session_scope

from calltracking.attribution.catalogue import HookCache
from support.agi_server import ServerThread
from support.config import make_config
from support.fastagi_client import RECORDED, call, headers, mset

ROUTE_VARS = {"CT_CALL_ID", "CT_PROJECT", "CT_SOURCE", "CT_CAMPAIGN", "CT_ATTRIBUTION", "CT_QUEUE",
              "CT_TARGET", "CT_CALLER_TYPE", "CT_RECORD", "CT_CONFIDENCE", "CT_WHISPER", "CT_STATUS"}


def test_one_round_trip_sets_every_variable(agi, data):
    res = call(agi.port, headers(args=("74950001002", "700.1")))   # no caller-ID prefix here
    assert len(res.commands) == 1 and res.commands[0].startswith("EXEC MSet ")
    assert set(res.vars) == ROUTE_VARS
    assert res.vars["CT_SOURCE"] == "Billboard" and res.vars["CT_TARGET"] == ""
    assert res.vars["CT_CONFIDENCE"] == "1.000" and res.vars["CT_QUEUE"] == "sales"


def test_asterisk_without_mset_gets_set_variable(agi, data):
    with_mset = call(agi.port, headers(args=("74950001001", "701.1")))
    without = call(agi.port, headers(args=("74950001001", "701.2")), apps=())
    assert without.commands[0].startswith("EXEC MSet ")            # tried once, result=-2
    assert all(c.startswith("SET VARIABLE ") for c in without.commands[1:])
    assert len(without.commands) == 1 + len(ROUTE_VARS) + 1      # + CALLERID(name)
    strip = lambda v: {k: x for k, x in v.items() if k != "CT_CALL_ID"}  # noqa: E731
    assert strip(without.vars) == strip(with_mset.vars)
    assert without.vars["CT_CALL_ID"] == "pbx1-701.2"


def test_mset_off_in_config(db_url, data, session_factory, clock):
    srv = ServerThread(make_config(db_url, agi__mset="no"), session_factory, clock=clock,
                       cache=HookCache(rules_ttl=0))
    try:
        res = call(srv.port, RECORDED["asterisk_sent_headers"])
    finally:
        srv.stop()
    assert all(c.startswith("SET VARIABLE ") for c in res.commands)
    assert res.vars["CT_SOURCE"] == "Google Ads" and res.vars["CT_STATUS"] == "ok"


def test_values_mset_would_mangle_go_one_by_one(agi, data, session_factory):
    tricky = 'Яндекс, "Директ" (поиск) | a=b \\ $x'
    with session_scope(session_factory) as s:
        p_ = svc.get_project(s, "acme")
        src = svc.add_source(s, p_, tricky, short_label="Я")
        svc.add_campaign(s, src, "Кампания весна-2026")
        svc.add_number(s, p_, "+74950004001", source=src, callerid_prefix=False)
    res = call(agi.port, headers(args=("74950004001", "702.1")))
    assert res.vars["CT_SOURCE"] == tricky                        # exact, through SET VARIABLE
    assert res.commands[0].startswith("EXEC MSet ") and "CT_SOURCE" not in res.commands[0]
    assert any(c.startswith("SET VARIABLE CT_SOURCE ") for c in res.commands)
    assert set(res.vars) == ROUTE_VARS


def test_mset_safe_and_line_splitting():
    assert p.mset_safe("CT_SOURCE", "Яндекс Директ")
    assert p.mset_safe("CT_TARGET", "")
    assert p.mset_safe("CT_TARGET", "PJSIP/101@trunk")
    for bad in ("a,b", "a|b", 'a"b', "a\\b", "(a)", "[a]", "a=b", "$x", " lead", "trail ",
                "two  spaces", "x" * (p.MAX_VALUE + 1), "new\nline"):
        assert not p.mset_safe("CT_SOURCE", bad), bad
    # besides our own CT_* names, only the caller-ID name, plain, its label in brackets in front
    for name in ("Ivan", "[Ads] Ivan Petrov", "[Яндекс Директ] Иван", "[Ads]", "[Ads] +79161234567"):
        assert p.mset_safe("CALLERID(name)", name), name
    for bad in ("[Ads] O'Brien", "[Ads] Ivan, Petrov", "[A]d] x", "[Ads]  x", "[Ads] [x]", "(x)",
                "[Ads] a|b", "[Ads] ${EXTEN}", "[Ads] «x»", "", "[Ads] " + "x" * p.MAX_VALUE):
        assert not p.mset_safe("CALLERID(name)", bad), bad
    assert not p.mset_safe("CALLERID(num)", "Ivan") and not p.mset_safe("OTHER", "x")
    pairs = [(f"CT_V{i}", "я" * 200) for i in range(12)]           # 400 bytes of UTF-8 each
    lines = p.mset_lines(pairs)
    assert len(lines) > 1 and sum(len(n) for _, n in lines) == 12
    got: dict[str, str] = {}
    for line, names in lines:
        assert len(line.encode()) <= p.MSET_LINE + 20
        mset(line[len('EXEC MSet "'):-1], got)
    assert got == dict(pairs)
