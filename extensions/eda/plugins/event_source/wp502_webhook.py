"""wp502_webhook: an ansible-rulebook event source that takes alerts over HTTP: Prometheus
Alertmanager's webhook payload or a generic JSON object, normalised to wp502 events.

Arguments::

    host:   address to listen on (default 127.0.0.1)
    port:   port (required)
    token:  when set, requests must carry "Authorization: Bearer TOKEN"
    label:  the alert label that names the inventory host (default "wp502_host", then "instance"
            with its :port cut)

Accepted bodies (POST, JSON)::

    Alertmanager: {"version": "4", "alerts": [{"status": "firing", "labels": {"wp502_host": "web1", ...}}]}
    generic:      {"host": "web1", "status": 502}    (or "state": "down")

Each firing alert (or generic 5xx/down) becomes
``{"wp502": {"host": ..., "state": "down", "kind": "alert", "source": "alertmanager" | "webhook", ...}}``;
resolved alerts become ``state: "up"``.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from typing import Any

from aiohttp import web


def normalise(body: Any, label: str = "wp502_host") -> list[dict]:
    """wp502 events from an Alertmanager or generic payload (a list; empty when nothing applies)."""
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    events = []
    if isinstance(body.get("alerts"), list):
        for alert in body["alerts"]:
            labels = (alert or {}).get("labels") or {}
            host = labels.get(label) or str(labels.get("instance") or "").rsplit(":", 1)[0]
            if not host:
                continue
            state = "up" if alert.get("status") == "resolved" else "down"
            events.append({"wp502": {"host": host, "state": state, "kind": "alert", "source": "alertmanager",
                                     "alertname": labels.get("alertname"), "summary": (alert.get("annotations") or {}).get("summary")}})
        return events
    host = body.get("host")
    if not host:
        raise ValueError('a generic payload names its "host"')
    status = body.get("status")
    down = body.get("state") == "down" or (isinstance(status, int) and 500 <= status < 600)
    events.append({"wp502": {"host": str(host), "state": "down" if down else "up", "kind": "alert", "source": "webhook",
                             "codes": {"/": status} if isinstance(status, int) else {}}})
    return events


async def main(queue: asyncio.Queue, args: dict[str, Any]) -> None:
    port = int(args["port"])
    token = args.get("token")
    label = args.get("label", "wp502_host")

    async def receive(request: web.Request) -> web.Response:
        if token and not hmac.compare_digest(request.headers.get("Authorization", ""), f"Bearer {token}"):
            return web.json_response({"error": "unauthorized"}, status=401)
        try:
            events = normalise(await request.json(), label)
        except (ValueError, json.JSONDecodeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        for event in events:
            await queue.put(event)
        return web.json_response({"accepted": len(events)}, status=202)

    app = web.Application()
    app.router.add_post("/{tail:.*}", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, args.get("host", "127.0.0.1"), port)
    await site.start()
    try:
        await asyncio.Future()  # serve until the rulebook stops
    finally:
        await runner.cleanup()
