#!/usr/bin/env python3
"""Micro-benchmark of :func:`calltracking.dni.useragent.parse` (a script, not a test).

Every DNI assignment parses the visitor's user agent (on the asyncio DNI server, on its event
loop). Prints the mean cost of a cache miss (``--strings`` distinct strings of real browsers,
versions and phone models varied, the cache cleared) and of a hit, and the import cost (the
matcher is built then).

Usage: ``.venv/bin/python bench/dni_useragent.py [--strings 2000]``
"""
from __future__ import annotations

import argparse
import itertools
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TEMPLATES = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.{b}.{p} "
    "Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 "
    "Safari/537.36 Edg/{v}.0.{b}.{p}",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 "
    "YaBrowser/23.{p}.{b}.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.{p} Safari/605.1.{b}",
    "Mozilla/5.0 (X11; Linux x86_64; rv:{v}.0) Gecko/20100101 Firefox/{v}.{p}",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_{p} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.{p} Mobile/15E{b} Safari/604.1",
    "Mozilla/5.0 (iPad; CPU OS 16_{p} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/16.{p} Mobile/15E{b} Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-S9{p}1B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.{b}.0 "
    "Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; arm_64; Android 13; SM-A{b}F) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 "
    "YaBrowser/23.{p}.1.0 SA/3 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-X{b}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 "
    "Safari/537.36",
)


def strings(n: int) -> list:
    rnd = random.Random(7)
    out: dict = {}
    for t in itertools.cycle(TEMPLATES):
        if len(out) >= n:
            break
        s = t.format(v=rnd.randint(100, 125), b=rnd.randint(100, 9999), p=rnd.randint(0, 9))
        out[s] = None
    return list(out)


def measure(parse, uas: list) -> tuple:
    """(µs per miss, µs per hit) of ``parse`` (an lru_cache'd function)."""
    parse(uas[0])
    parse.cache_clear()
    t = time.perf_counter()
    for ua in uas:
        parse(ua)
    miss = (time.perf_counter() - t) / len(uas)
    t = time.perf_counter()
    for _ in range(10):
        for ua in uas:
            parse(ua)
    hit = (time.perf_counter() - t) / (10 * len(uas))
    return miss * 1e6, hit * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--strings", type=int, default=2000)
    a = ap.parse_args()
    code = "import time; t = time.perf_counter(); import calltracking.dni.useragent; print(time.perf_counter() - t)"
    imported = float(subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True,
                                    text=True).stdout)
    from calltracking.dni import useragent

    uas = strings(a.strings)
    miss, hit = measure(useragent.parse, uas)
    print(f"useragent.parse: {len(uas)} distinct strings; miss {miss:.1f} µs, hit {hit:.2f} µs; "
          f"import {imported:.2f} s")


if __name__ == "__main__":
    main()
