"""The fast paths of AMI ingest give what the general paths give.

- The stored events are written by one ``executemany`` of the driver (SQLite: the time as text
  made by :func:`calltracking.callstore.rows.epoch_text`) or one ``COPY`` (PostgreSQL): the rows
  read back are the rows SQLAlchemy's own insert stores, on SQLite and PostgreSQL.
- The reader queues the events of one read as one item, in order, and a sync frame in the
  middle of a read (a ``QueueMember`` answering the listener's ``QueueStatus``) keeps its place.
- The calls' and legs' updates (:func:`calltracking.callstore.rows.update_by_id`) set what
  each row names, as the ORM's bulk update does.
- The reader drops the ``VarSet`` events of variables nobody reads (one search for all the kept
  names) and keeps the others, with their ``Privilege`` counted.
"""
import datetime as dt
from decimal import Decimal
import random

import pytest
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from ami_listener.connection import SKIP, SYNC_ID, _Protocol
from calltracking.callstore.events import EVENT_COLUMNS, EventLog, event_row
from calltracking.callstore.rows import epoch_text, update_by_id, utc
from calltracking.interpret import FrameParser
from calltracking.interpret.channels import VARSET_PREFIXES
from calltracking.models import AmiEvent, Call

pytestmark = pytest.mark.db


def test_epoch_text_is_the_column_types_own_text():
    at = AmiEvent.__table__.c.at.type
    d = sqlite.dialect()
    processor = at.dialect_impl(d).bind_processor(d)
    rnd = random.Random(7)
    stamps = [0.0, 1.0, 946684800.0, 1700000000.5, 1700000000.000001, 4102444799.999999]
    stamps += [rnd.uniform(946684800, 4102444800) for _ in range(2000)]
    stamps += [rnd.randrange(946684800, 4102444800) + rnd.randrange(0, 10**6) / 1e6 + 5e-7
               for _ in range(2000)]                  # near a half microsecond: the rounding
    for ts in stamps:
        assert epoch_text(ts) == processor(utc(ts)), ts
    # PostgreSQL takes the datetime itself (no text): nothing to copy there
    pg = postgresql.psycopg.dialect()
    assert at.dialect_impl(pg).bind_processor(pg)(utc(1.5)) == dt.datetime(1970, 1, 1, 0, 0, 1, 500000)


def test_stored_events_equal_sqlalchemys_insert(session_factory):
    ev = {"Event": "Newchannel", "Privilege": "call,all", "Timestamp": "1795391980.500001",
          "Channel": "PJSIP/trunk-000000c1", "ChannelState": "4", "CallerIDName": "Иван «ʼ",
          "Uniqueid": "1795391980.77", "Linkedid": "1795391980.77", "Exten": "74950001012"}
    no_ts = {k: v for k, v in ev.items() if k != "Timestamp"}
    rows = [event_row("pbx-a", "1795391980.77", ev, 1795391980.500001, 1795391981.25),
            event_row("pbx-a", "1795391980.77", no_ts, 1795391981.0, 1795391981.0),
            event_row("pbx-a", "1795391980.78", dict(ev, Linkedid="1795391980.78"), 1795391982.0, 1795391982.0),
            # COPY's own syntax in values: backslashes, its NULL marker, tab, carriage return
            event_row("pbx-a", "17953\\91980.79\t", dict(ev, CallerIDName='a\\b\tc\rd \\N "\\\\x"',
                                                           Exten="\\."), 1795391983.999999, 1795391984.0)]
    with session_factory() as s, s.begin():
        EventLog("pbx-a").add(s, rows)
        s.execute(AmiEvent.__table__.insert(), [dict(zip(EVENT_COLUMNS, r), pbx_id="pbx-b", at=utc(r[2]))
                                                for r in rows])
    with session_factory() as s:
        got = {pbx: s.execute(select(AmiEvent.linkedid, AmiEvent.at, AmiEvent.event, AmiEvent.data)
                              .where(AmiEvent.pbx_id == pbx).order_by(AmiEvent.id)).all()
               for pbx in ("pbx-a", "pbx-b")}
    assert len(got["pbx-a"]) == 4
    assert got["pbx-a"] == got["pbx-b"]
    assert got["pbx-a"][3].linkedid == "17953\\91980.79\t"
    assert 'CallerIDName: a\\b\tc\rd \\N "\\\\x"' in got["pbx-a"][3].data
    assert got["pbx-a"][0].at == utc(1795391980.500001)
    assert "CallerIDName: Иван «ʼ" in got["pbx-a"][0].data and "ChannelState" not in got["pbx-a"][0].data


def frame(name, uid, ts, extra=b""):
    return (b"Event: %s\r\nPrivilege: call,all\r\nTimestamp: %s\r\nUniqueid: %s\r\nLinkedid: %s\r\n%s\r\n"
            % (name, ts, uid, uid, extra))


class _Transport:
    def write(self, data):
        pass

    def close(self):
        pass


def protocol():
    p = _Protocol()
    p.connection_made(_Transport())
    p.items = []
    p.sink = lambda recv, f: p.items.append(("one", f))
    p.sink_many = lambda recv, frames: p.items.append(("many", [f.get("Event") for f in frames]))
    p.on_sync = lambda snapshot: p.items.append(("sync", len(snapshot)))
    return p


def test_reader_queues_a_read_as_one_item_and_sync_frames_keep_their_place():
    p = protocol()
    member = (b"Event: QueueMember\r\nActionID: " + SYNC_ID.encode() + b"queues-1\r\nQueue: sales\r\n"
              b"Name: Anna\r\nLocation: PJSIP/201\r\nStatus: 1\r\nPaused: 0\r\n\r\n")
    data = (b"Asterisk Call Manager/11.0.0\r\n" + frame(b"Newchannel", b"1.1", b"100.000001")
            + frame(b"Newexten", b"1.1", b"100.000002") + frame(b"Newstate", b"1.1", b"100.000003")
            + member + frame(b"Hangup", b"1.1", b"100.000004"))
    p.data_received(data[:150])                   # a frame cut across two reads
    p.data_received(data[150:])
    assert p.items[0] == ("many", ["Newchannel"])
    assert p.items[1] == ("many", ["Newstate"])
    assert p.items[2][0] == "one" and p.items[2][1]["Event"] == "QueueMember"
    assert p.items[3] == ("many", ["Hangup"])
    assert p.items[4][0] == "one" and p.items[4][1]["_skipped"] == 1          # Newexten, unread
    assert p.items[4][1]["_privileges"] == {"call,all"}
    assert p.heard == "100.000004"
    assert p.frames == 4


def test_reader_keeps_only_the_variables_it_reads():
    fp = FrameParser(skip=SKIP, keep_vars=VARSET_PREFIXES)
    wanted = [b"CT_SOURCE", b"CT_X", b"MIXMONITOR_FILENAME", b"QUEUESTATUS"]
    others = [b"BRIDGEPEER", b"DIALSTATUS", b"MIXMONITOR", b"XCT_SOURCE", b"QUEUE"]
    data = b"".join(frame(b"VarSet", b"1.%d" % i, b"100.%06d" % i, b"Variable: %s\r\nValue: v\r\n" % v)
                    for i, v in enumerate(wanted + others))
    data += b"Event: VarSet\r\nActionID: 42\r\nVariable: DIALSTATUS\r\nValue: v\r\n\r\n"   # answers an action
    got = fp.feed(data)
    assert [f["Variable"] for f in got] == ["CT_SOURCE", "CT_X", "MIXMONITOR_FILENAME", "QUEUESTATUS", "DIALSTATUS"]
    assert fp.skipped == len(others)              # a name is kept whole: "QUEUE", "MIXMONITOR" are not
    assert fp.privileges == {b"call,all": fp.skipped}


def test_update_by_id_sets_each_rows_own_columns(session_factory):
    """The calls' and legs' updates (rows with different sets of columns) change what each row
    names and nothing else, as the ORM's bulk update by primary key does."""
    t = Call.__table__
    with session_factory() as s, s.begin():
        ids = [s.execute(t.insert().values(pbx_id="p", linkedid=f"l{i}", status="in_progress", queue="q0",
                                           recording_file="", caller_number="", via_agi=False)
                         .returning(t.c.id)).scalar_one() for i in range(4)]
    rows = [{"id": ids[0], "status": "answered", "talk_seconds": Decimal("1.250")},
            {"id": ids[1], "queue": "sales", "status": "missed"},
            {"status": "answered", "id": ids[2], "talk_seconds": Decimal("0.001")}]
    with session_factory() as s, s.begin():
        update_by_id(s, t, rows)
    with session_factory() as s:
        got = {r.id: (r.status, r.queue, r.talk_seconds) for r in s.execute(select(t.c.id, t.c.status, t.c.queue,
                                                                                  t.c.talk_seconds))}
    assert got == {ids[0]: ("answered", "q0", Decimal("1.250")), ids[1]: ("missed", "sales", None),
                   ids[2]: ("answered", "q0", Decimal("0.001")), ids[3]: ("in_progress", "q0", None)}
