"""Python stream load for bench/run.ts: one custos_client SignStream, N coroutines each keeping
one raw Sign in flight (closed loop), a warm-up, then a measured window bracketed by
{"window": "start"|"end"} lines; the last stdout line is the result (ClientResult's fields).
Run with Debian's /usr/bin/python3 (python3-grpcio); argv[1] is the job as JSON."""
from __future__ import annotations

import asyncio
import hmac
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "clients" / "python"))
import build_stubs  # noqa: E402

build_stubs.ensure()
from custos_client import AsyncClient, Connection  # noqa: E402


def emit(value: dict) -> None:
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


async def main(job: dict) -> dict:
    payload, expected = bytes.fromhex(job["payloadHex"]), bytes.fromhex(job["expectedHex"])
    conn = Connection(addresses=[job["grpc"]], ca_path=job["caPath"], cert_path=job["certPath"], key_path=job["keyPath"])
    async with AsyncClient(conn) as client:
        async with client.sign_stream(max_in_flight=job["inFlight"]) as stream:
            first = await stream.sign(job["keyId"], payload)
            if not hmac.compare_digest(first.signature, expected):
                raise SystemExit("signature differs from hashlib HMAC-SHA256")
            window = {"start": float("inf"), "end": float("inf"), "calls": 0}
            stop_at = time.monotonic() + job["warmupSeconds"] + job["seconds"]

            async def worker() -> None:
                while time.monotonic() < stop_at:
                    await stream.sign(job["keyId"], payload)
                    if window["start"] <= time.monotonic() <= window["end"]:
                        window["calls"] += 1

            workers = [asyncio.ensure_future(worker()) for _ in range(job["inFlight"])]
            await asyncio.sleep(job["warmupSeconds"])  # the warm-up is a duration, not a condition
            emit({"window": "start"})
            cpu0, window["start"] = time.process_time(), time.monotonic()
            window["end"] = window["start"] + job["seconds"]
            await asyncio.sleep(job["seconds"])
            wall, cpu = time.monotonic() - window["start"], time.process_time() - cpu0
            emit({"window": "end"})
            await asyncio.wait_for(asyncio.gather(*workers), 60)
    calls, cpu_us = window["calls"], round(cpu * 1e6)
    return {
        "mode": "stream", "impl": "python grpc.aio", "calls": calls, "errors": 0, "seconds": round(wall, 3),
        "per_s": round(calls / wall), "cpu_us": cpu_us, "cpu_us_per_call": round(cpu_us / calls, 2) if calls else 0,
        "cores": round(cpu / wall, 2),
    }


if __name__ == "__main__":
    emit(asyncio.run(main(json.loads(sys.argv[1]))))
