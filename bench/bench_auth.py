"""``python -m bench.bench_auth``: signed-in users' latency while 40 clients guess tokens.

    python -m bench.bench_auth [--users 4] [--guessers 40] [--seconds 20]

1. A fresh data directory with ``--users`` reviewers (no run is needed: ``/api/me`` reads none), served
   by ``geo-eval serve`` on 127.0.0.1 (one uvicorn process, as ``make serve`` runs it).
2. **Quiet**: each user is one client calling ``GET /api/me`` with its Bearer token, back to back, for
   ``--seconds``; latency is measured by the client, from sending to the last byte.
3. **Bearer flood**: the same, while ``--guessers`` more clients call ``/api/me`` back to back with wrong
   tokens: half with the token id of a real user and a random secret, half with random token ids (the
   service spends one scrypt on each either way).
4. **Sign-in flood**: the same, while ``--guessers`` clients post wrong sign-ins to ``/login`` (random
   user names and tokens), each from its own loopback address (127.0.0.2, 127.0.0.3 …) so that the
   per-address lockout does not simply stop them all at once.

Prints a Markdown table (p50/p95/p99 of the users' requests, their count, and the guesses answered and
how) and writes ``bench/out/auth.md`` and ``bench/out/auth.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import shutil
import time
from collections import Counter
from typing import Any

from bench.bench_service import OUT_DIR, free_port, percentiles, start_service, stop_service

WRONG_SECRET_LEN = 43


def wrong_token(real_ids: list[str], i: int) -> str:
    """A guess: a real token id with a random secret (even ``i``) or a random token id."""
    token_id = real_ids[i % len(real_ids)] if i % 2 == 0 else secrets.token_hex(6)
    return f"gev.{token_id}.{secrets.token_urlsafe(32)[:WRONG_SECRET_LEN]}"


async def _users(url: str, tokens: list[str], stop: float) -> list[float]:
    """Each user calls /api/me back to back until ``stop``; the latencies in ms (all 200, else an error)."""
    import httpx

    latencies: list[float] = []

    async def user(token: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
            while time.monotonic() < stop:
                t = time.perf_counter()
                r = await client.get("/api/me")
                latencies.append((time.perf_counter() - t) * 1000)
                if r.status_code != 200:
                    raise RuntimeError(f"a signed-in user got {r.status_code}: {r.text[:200]}")

    await asyncio.gather(*(user(t) for t in tokens))
    return latencies


async def _bearer_guesser(url: str, real_ids: list[str], i: int, stop: float, seen: Counter[int]) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        while time.monotonic() < stop:
            r = await client.get("/api/me", headers={"Authorization": f"Bearer {wrong_token(real_ids, i)}"})
            seen[r.status_code] += 1


async def _login_guesser(url: str, i: int, stop: float, seen: Counter[int]) -> None:
    import httpx

    transport = httpx.AsyncHTTPTransport(local_address=f"127.0.0.{2 + i}")
    async with httpx.AsyncClient(base_url=url, timeout=120, transport=transport) as client:
        while time.monotonic() < stop:
            form = {"name": f"guess{secrets.token_hex(3)}", "token": wrong_token([secrets.token_hex(6)], 0)}
            r = await client.post("/login", data=form, headers={"Origin": url})
            seen[r.status_code] += 1


async def _phase(
    url: str, tokens: list[str], real_ids: list[str], kind: str, guessers: int, seconds: float
) -> dict[str, Any]:
    stop = time.monotonic() + seconds
    seen: Counter[int] = Counter()
    if kind == "bearer":
        flood = [_bearer_guesser(url, real_ids, i, stop, seen) for i in range(guessers)]
    elif kind == "login":
        flood = [_login_guesser(url, i, stop, seen) for i in range(guessers)]
    else:
        flood = []
    t = time.perf_counter()
    results = await asyncio.gather(_users(url, tokens, stop), *flood)
    wall = time.perf_counter() - t
    latencies: list[float] = results[0]
    return {
        "phase": kind,
        "guessers": len(flood),
        "user_requests": len(latencies),
        "user_rps": len(latencies) / wall,
        **percentiles(latencies),
        "guesses": dict(sorted(seen.items())),
        "guesses_per_s": sum(seen.values()) / wall,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--users", type=int, default=4)
    ap.add_argument("--guessers", type=int, default=40)
    ap.add_argument("--seconds", type=float, default=20)
    args = ap.parse_args(argv)

    from geo_eval import __version__
    from geo_eval.storage import open_store

    work = OUT_DIR / "auth"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    store = open_store(work / "data")
    tokens = [store.add_user(f"user{i}", "reviewer")[1] for i in range(args.users)]
    store.close()
    real_ids = [t.split(".")[1] for t in tokens]
    port = free_port()
    proc = start_service(work / "data", port, work / "server.log")
    url = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(_phase(url, tokens, real_ids, "quiet", 0, 2))  # warm-up: every user's token verified once
        phases = [
            asyncio.run(_phase(url, tokens, real_ids, kind, args.guessers, args.seconds))
            for kind in ("quiet", "bearer", "login")
        ]
    finally:
        stop_service(proc)
    result = {"version": __version__, "users": args.users, "seconds": args.seconds, "phases": phases}
    lines = [
        f"signed-in users' GET /api/me, {args.users} clients, {args.seconds:g} s per phase (geo-eval {__version__})",
        "",
        "| phase | guessers | user requests | p50 ms | p95 ms | p99 ms | guesses answered | guesses/s |",
        "|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for p in phases:
        answered = ", ".join(f"{n}× {code}" for code, n in p["guesses"].items()) or "—"
        lines.append(
            f"| {p['phase']} | {p['guessers']} | {p['user_requests']} | {p['p50']:.1f} | {p['p95']:.1f} | "
            f"{p['p99']:.1f} | {answered} | {p['guesses_per_s']:.1f} |"
        )
    text = "\n".join(lines)
    print(text)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "auth.md").write_text(text + "\n", encoding="utf-8")
    (OUT_DIR / "auth.json").write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
