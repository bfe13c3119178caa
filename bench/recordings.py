#!/usr/bin/env python3
"""Recordings and deliveries benchmark (prints figures; not a test).

- analysis (pydub silence detection on both sides) and conversion of a long stereo
  8 kHz call (default 60 minutes: alternating talk and pauses) to mp3 and ogg/opus;
- the outbox: N CRM deliveries sent to a local HTTP server through ``deliver_due``
  (SQLite in a temporary directory).

    .venv/bin/python bench/recordings.py
    .venv/bin/python bench/recordings.py --minutes 10 --deliveries 200
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_call(path: Path, minutes: float) -> None:
    from pydub import AudioSegment
    from pydub.generators import Sine

    rng = random.Random(1)
    total = int(minutes * 60_000)
    tone_l = Sine(440, sample_rate=8000).to_audio_segment(4000, volume=-18).raw_data
    tone_r = Sine(660, sample_rate=8000).to_audio_segment(4000, volume=-18).raw_data
    ms = 16  # bytes per millisecond: 8 kHz, 16 bit, mono
    left, right = [], []
    pos = 0
    while pos < total:
        a, gap, b = rng.randint(500, 4000), rng.randint(100, 3000), rng.randint(500, 4000)
        left += [tone_l[:a * ms], bytes((gap + b) * ms)]
        right += [bytes((a + gap) * ms), tone_r[:b * ms]]
        pos += a + gap + b
    mono = [AudioSegment(data=b"".join(x)[:total * ms], sample_width=2, frame_rate=8000, channels=1)
            for x in (left, right)]
    AudioSegment.from_mono_audiosegments(*mono).export(str(path), format="wav")


def bench_audio(minutes: float, tmp: Path) -> None:
    from calltracking.jobs import recording_audio, recordings

    wav = tmp / "call.wav"
    t = time.perf_counter()
    make_call(wav, minutes)
    print(f"generated {minutes:g} min stereo 8 kHz WAV ({wav.stat().st_size / 1e6:.1f} MB) "
          f"in {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    audio, a = recording_audio.analyze([wav])
    print(f"analyze: {time.perf_counter() - t:.2f} s  (talk caller {a.caller_talk:.0f} s, operator "
          f"{a.operator_talk:.0f} s, ratio {a.talk_ratio}, longest silence {a.longest_silence:.1f} s)")
    # the conversation measures alone, on the speech ranges the analysis found (baseline: analyze)
    from calltracking.jobs import conversation

    left, right = audio.split_to_mono()
    c, o = recording_audio.speech_ranges(left), recording_audio.speech_ranges(right)
    t = time.perf_counter()
    n = conversation.interruptions(o, c) + conversation.interruptions(c, o)
    print(f"conversation measures on {len(c)} + {len(o)} speech ranges: {(time.perf_counter() - t) * 1000:.1f} ms "
          f"(interruptions {n}, first operator word {conversation.first_word(o)} s)")
    for fmt in ("mp3", "ogg"):
        t = time.perf_counter()
        out = recordings.convert(audio, tmp / f"call.{fmt}", fmt)
        print(f"convert to {fmt}: {time.perf_counter() - t:.2f} s, {out.stat().st_size / 1e6:.2f} MB")


def bench_outbox(n: int, tmp: Path) -> None:
    from calltracking import migrate
    from calltracking.jobs import outbox
    from calltracking.config import load_config
    from calltracking.db import make_engine, make_sessionmaker, session_scope
    from calltracking.models import Project

    class H(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"sqlite:///{tmp / 'bench.db'}"
    migrate.upgrade(url)
    sf = make_sessionmaker(make_engine(url))
    cfg = load_config(tmp / "none.ini", env={}, require_file=False,      # the receiver is on loopback
                      overrides={"database.url": url, "notify.allow_private_targets": "yes"})
    with session_scope(sf) as s:
        p = Project(key="b", name="b")
        s.add(p)
        s.flush()
        for i in range(n):
            outbox.enqueue(s, "crm", "call_finished", {
                "method": "POST", "url": f"http://127.0.0.1:{srv.server_address[1]}/crm",
                "headers": {"Content-Type": "application/json"}, "body": '{"n": %d}' % i}, project_id=p.id)
    t = time.perf_counter()
    sent = 0
    while True:
        s_, f_, d_ = outbox.deliver_due(cfg, sf)
        sent += s_
        if not (s_ or f_):
            break
    dt_ = time.perf_counter() - t
    print(f"outbox: {sent}/{n} webhooks delivered in {dt_:.2f} s ({sent / dt_:.0f}/s, one job run per 200)")
    srv.shutdown()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--deliveries", type=int, default=1000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        bench_audio(args.minutes, Path(d))
        bench_outbox(args.deliveries, Path(d))


if __name__ == "__main__":
    main()
