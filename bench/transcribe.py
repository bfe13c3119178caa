#!/usr/bin/env python3
"""Transcription benchmark: pocketsphinx's real-time factor per core, and the FastAGI p99 while
two worker processes transcribe (prints figures; not a test).

1. Makes ``--minutes`` (default 60) of two-channel English speech with espeak-ng
   (:mod:`calltracking.transcripts.speech`): one-minute "calls" of alternating caller and
   operator lines, 16 kHz stereo WAV;
2. transcribes every call in this process exactly as a worker does
   (:func:`calltracking.jobs.transcripts.transcribe_files`: both sides, pocketsphinx) and
   prints the real-time factor per core: CPU seconds spent / seconds of call audio (each call
   has two sides: the per-side figure is printed too);
3. starts the real FastAGI server (``calltracking agi``, SQLite, the small data set of
   ``bench/agi_latency.py``) and drives it with that script's asyncio client in an open loop,
   in alternating rounds: without transcription, then while the job's worker pool (``--workers``
   processes, default 2, ``[transcripts] nice = 19``) transcribes the calls; prints p50/p99 of
   each round.

    .venv/bin/python bench/transcribe.py                    # 60 minutes of speech
    .venv/bin/python bench/transcribe.py --minutes 5 --rounds 2 --seconds 10
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

import agi_latency as agi  # noqa: E402

from calltracking import migrate  # noqa: E402
from calltracking.config import load_config  # noqa: E402
from calltracking.jobs import transcripts as job  # noqa: E402
from calltracking.transcripts.speech import write_dialogue  # noqa: E402

CALLER = ["i would like to order", "the price is too high", "can you deliver it tomorrow",
          "i am calling about the order", "what is the price", "we have a discount"]
OPERATOR = ["good morning this is the shop", "the order is ready", "i can help you with the order",
            "we have the price list", "let me check the order", "is there anything else"]


def make_calls(directory: Path, minutes: int, seed: int = 1) -> list[Path]:
    """``minutes`` one-minute stereo WAV files of alternating caller/operator lines."""
    rnd = random.Random(seed)
    files = []
    for i in range(minutes):
        lines, t, side = [], 0.5, "operator"
        while t < 56:
            lines.append((side, t, rnd.choice(OPERATOR if side == "operator" else CALLER)))
            t += 3.5 + rnd.random()
            side = "caller" if side == "operator" else "operator"
        path = write_dialogue(directory / f"call-{i:03d}.wav", lines, tail=60 - t + 1)
        files.append(path)
    return files


def audio_seconds(files: list[Path]) -> float:
    import wave

    total = 0.0
    for f in files:
        with wave.open(str(f)) as w:
            total += w.getnframes() / w.getframerate()
    return total


def cpu() -> float:
    t = os.times()
    return t.user + t.system


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=int, default=60, help="minutes of two-channel speech (default 60)")
    ap.add_argument("--rate", type=float, default=100.0, help="FastAGI calls per second in the open loop")
    ap.add_argument("--seconds", type=float, default=20.0, help="open-loop seconds per round")
    ap.add_argument("--rounds", type=int, default=3, help="rounds per condition (alternating)")
    ap.add_argument("--workers", type=int, default=2, help="worker processes transcribing (default 2)")
    a = ap.parse_args()
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is not installed (apt-get install espeak-ng)")
    tmp = Path(tempfile.mkdtemp(prefix="ct-bench-transcribe-"))
    server = None
    try:
        print(f"making {a.minutes} minute(s) of two-channel speech with espeak-ng", flush=True)
        t0 = time.monotonic()
        files = make_calls(tmp, a.minutes)
        secs = audio_seconds(files)
        print(f"  {len(files)} calls, {secs / 60:.1f} min in {time.monotonic() - t0:.1f} s", flush=True)

        cfg = load_config(env={}, overrides={"transcripts.backend": "pocketsphinx"}).transcripts
        print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
        job.transcribe_files(cfg, [str(files[0])])            # the model loaded once (not counted)
        c0, w0, words = cpu(), time.monotonic(), 0
        for f in files:
            _name, phrases = job.transcribe_files(cfg, [str(f)])
            words += sum(len(p[3].split()) for p in phrases)
        used, wall = cpu() - c0, time.monotonic() - w0
        print(f"pocketsphinx: {secs:.0f} s of calls ({2 * secs:.0f} s of sides) in {used:.1f} CPU-s "
              f"({wall:.1f} s wall), {words} words", flush=True)
        print(f"  real-time factor per core: {used / secs:.3f} per call-second, {used / (2 * secs):.3f} per "
              f"side-second -> one core transcribes {secs / used:.1f} h of calls per hour", flush=True)

        url = f"sqlite:///{tmp / 'bench.db'}"
        migrate.upgrade(url)
        static, pooled, callers = agi.generate(url, 1000, 100, 50, 20_000)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CALLTRACKING_")}
        env.update(CALLTRACKING_DATABASE_URL=url, CALLTRACKING_GENERAL_DEFAULT_QUEUE="sales",
                   CALLTRACKING_LOG_LEVEL="warning")
        server = agi.start_ours(env, 4, 1)
        load = agi.Load(static, pooled, callers)
        pool_cfg = load_config(env={}, overrides={"transcripts.backend": "pocketsphinx", "transcripts.workers": str(a.workers),
                                                  "transcripts.nice": "19"}).transcripts

        async def rounds():
            await agi.closed_loop(server.port, load, 4, 200, 30)          # warm-up
            out = {"idle": [], "transcribing": []}
            for r in range(a.rounds):
                for cond in ("idle", "transcribing"):
                    futures = []
                    if cond == "transcribing":
                        ex = job.pool(pool_cfg)
                        futures = [ex.submit(job._run, pool_cfg, [str(f)]) for f in files * 3]   # busy all round
                        await asyncio.sleep(3)                            # the workers are busy
                    la = os.getloadavg()[0]
                    res = await agi.open_loop(server.port, load, a.rate, a.seconds)
                    for fu in futures:
                        fu.cancel()
                    if cond == "transcribing":
                        job.shutdown_pool()
                    out[cond].append(res)
                    print(f"round {r + 1} {cond:<12} {res['calls']} calls at {a.rate:.0f}/s: p50 {res['p50']:.2f} ms"
                          f"  p99 {res['p99']:.2f} ms  max {res['max']:.2f} ms  failed {res['failed']}"
                          f"  (load average {la:.1f})", flush=True)
            for cond, rs in out.items():
                p99s = sorted(x["p99"] for x in rs)
                print(f"{cond:<12} median p99 {p99s[len(p99s) // 2]:.2f} ms over {len(rs)} round(s)", flush=True)

        asyncio.run(rounds())
    finally:
        if server is not None:
            server.stop()
        job.shutdown_pool()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
