#!/usr/bin/env python3
"""A trading bot's order path through `custos gateway`, in plain Python with `requests`.

Nothing here knows custos: the script talks to a Binance USDⓈ-M-shaped base URL. It sends no
secret and no signature (an API-key header with any value is fine, as are timestamp and
recvWindow); the gateway hands the request to custos, which signs it in its HSM and sends it to
the exchange itself.

    python3 gateway-bot.py http://127.0.0.1:7410/binance/<key-id> [withdraw]

Prints one JSON object per step.
"""
import json
import sys
import time

import requests

base = sys.argv[1].rstrip("/")
session = requests.Session()
session.headers["X-MBX-APIKEY"] = "held-by-custos"


def show(step, response):
    print(json.dumps({"step": step, "status": response.status_code, "body": response.json()}), flush=True)
    return response


if sys.argv[2:] == ["withdraw"]:
    show("withdraw", session.post(f"{base}/sapi/v1/capital/withdraw/apply", data={
        "coin": "USDT", "network": "TRX", "address": "TXYZabcdefghijklmnopqrstuvwxyz1234", "amount": "1000",
        "timestamp": int(time.time() * 1000)}, timeout=30))
    sys.exit(0)

placed = show("place", session.post(f"{base}/fapi/v1/order", data={
    "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
    "quantity": "0.010", "price": "30000", "timestamp": int(time.time() * 1000), "recvWindow": 5000}, timeout=30))
placed.raise_for_status()
order_id = placed.json()["orderId"]
cancelled = show("cancel", session.delete(f"{base}/fapi/v1/order", params={
    "symbol": "BTCUSDT", "orderId": order_id, "timestamp": int(time.time() * 1000)}, timeout=30))
cancelled.raise_for_status()
