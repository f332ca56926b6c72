# -*- coding: utf-8 -*-
# Copyright: wp502 contributors
# MIT License (see LICENSE)
"""Filters that turn per-host wp502 evidence into a fleet summary, a Markdown page and a
self-contained HTML page (inline SVG charts, no external assets). Controller side."""

from __future__ import annotations

import html
import json
from collections import Counter

_STATUS_LABEL = {"ok": "audited", "unreachable": "unreachable", "failed": "audit failed", "no_fpm": "no PHP-FPM",
                 "no_wordpress": "no WordPress"}


def _host_row(host, result, state):
    if state in ("unreachable", "failed") or not result:
        return {"host": host, "status": state or "unreachable", "top_cause": None, "confidence": None}
    verdict = result.get("verdict") or [{}]
    top = verdict[0]
    fpm = result.get("fpm") or {}
    status = "ok"
    if not fpm.get("pools"):
        status = "no_fpm"
    elif not result.get("wordpress"):
        status = "no_wordpress"
    origin = (result.get("http") or {}).get("origin") or {}
    logs = result.get("logs") or {}
    pools = []
    for p in fpm.get("pools") or []:
        rec = p.get("recommendation") or {}
        pools.append({"name": p.get("name"), "workers": p.get("workers"), "max_children": p.get("pm.max_children"),
                      "rss_p95": p.get("rss_p95"), "recommended": rec.get("pm.max_children"),
                      "available": (rec.get("basis") or {}).get("available_bytes")})
    return {
        "host": host, "status": status, "top_cause": top.get("cause"), "confidence": top.get("confidence"),
        "slug": top.get("slug"), "evidence": (top.get("evidence") or [""])[0], "rungs": top.get("rungs") or [],
        "next_step": top.get("next_step"), "causes": [c.get("cause") for c in verdict],
        "origin": dict((k, (v or {}).get("status")) for k, v in origin.items()),
        "signatures": dict((k, v.get("count", 0)) for k, v in (logs.get("signatures") or {}).items() if v.get("count")),
        "suspects": ["%s:%s" % (s.get("type"), s.get("slug")) for s in (logs.get("suspects") or [])[:5]],
        "by_hour": (result.get("peak_hours") or {}).get("by_hour") or {},
        "frontend": (result.get("frontend") or {}).get("kind"), "pools": pools,
        "errors": len(result.get("errors") or []),
    }


def wp502_fleet_summary(hostvars, hosts, unreachable=None, failed=None):
    """Summary of an audit: one row per host (audited or not), causes across the fleet, and the hosts
    that share a cause, a signature or a suspect plugin."""
    unreachable = set(unreachable or [])
    failed = set(failed or [])
    rows = []
    for host in hosts:
        hv = hostvars.get(host, {})
        result = hv.get("wp502_evidence_result") if hasattr(hv, "get") else None
        state = "unreachable" if host in unreachable else "failed" if host in failed or not result else None
        rows.append(_host_row(host, result, state))
    causes = Counter(r["top_cause"] for r in rows if r["top_cause"])
    by_cause, by_signature, by_suspect = {}, {}, {}
    for r in rows:
        if r["top_cause"]:
            by_cause.setdefault(r["top_cause"] + (":" + r["slug"] if r.get("slug") else ""), []).append(r["host"])
        for sig in r.get("signatures") or {}:
            by_signature.setdefault(sig, []).append(r["host"])
        for sus in r.get("suspects") or []:
            by_suspect.setdefault(sus, []).append(r["host"])
    statuses = Counter(r["status"] for r in rows)
    return {
        "hosts": len(rows), "rows": rows, "statuses": dict(statuses), "causes": dict(causes.most_common()),
        "shared": {
            "cause": dict((k, v) for k, v in by_cause.items() if len(v) > 1),
            "signature": dict((k, v) for k, v in by_signature.items() if len(v) > 1),
            "suspect": dict((k, v) for k, v in by_suspect.items() if len(v) > 1),
        },
        "unhealthy": sorted(r["host"] for r in rows if r["top_cause"] not in (None, "healthy")),
    }


def _mib(value):
    return "%d MiB" % (value // (1024 * 1024)) if value else "-"


def wp502_report_markdown(summary, title="wp502 fleet audit", when=""):
    lines = ["# %s" % title, ""]
    if when:
        counts = ", ".join("%d %s" % (n, _STATUS_LABEL.get(s, s)) for s, n in sorted(summary["statuses"].items()))
        lines += ["%s. %d hosts: %s." % (when, summary["hosts"], counts) if summary["hosts"]
                  else "%s. No host matched the audit's host pattern." % when, ""]
    lines += ["| host | status | top cause | confidence | evidence | origin / , /wp-login.php | next |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in summary["rows"]:
        cause = (r.get("top_cause") or "-") + (" (%s)" % r["slug"] if r.get("slug") else "")
        origin = ", ".join(str(v) for v in (r.get("origin") or {}).values()) or "-"
        nxt = ", ".join(r.get("rungs") or []) or (r.get("next_step") or "-")
        lines.append("| %s | %s | %s | %s | %s | %s | %s |" % (
            r["host"], _STATUS_LABEL.get(r["status"], r["status"]), cause,
            r["confidence"] if r.get("confidence") is not None else "-",
            (r.get("evidence") or "-").replace("|", "\\|")[:160], origin, nxt.replace("|", "\\|")[:160]))
    lines += ["", "## Causes across the fleet", ""]
    lines += ["- %s: %d" % (c, n) for c, n in summary["causes"].items()] or ["- none"]
    for kind in ("cause", "suspect", "signature"):
        shared = summary["shared"][kind]
        if shared:
            lines += ["", "## Hosts sharing a %s" % kind, ""]
            lines += ["- %s: %s" % (k, ", ".join(v)) for k, v in sorted(shared.items())]
    return "\n".join(lines) + "\n"


_CSS = """body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse;width:100%}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}th{background:#f4f4f4}
.healthy{color:#17803d}.bad{color:#b42318;font-weight:600}.muted{color:#888}h2{margin-top:28px}
.chart{display:inline-block;margin:8px 24px 8px 0;vertical-align:top}.chart text{font-size:11px}
figcaption{font-size:12px;color:#444;margin-bottom:4px}"""


def _hbars(items, unit="", color="#445", width=520):
    """Labelled horizontal bars, as inline SVG: one row per (label, value)."""
    items = [(str(k), v or 0) for k, v in items]
    if not items:
        return '<p class="muted">none</p>'
    top = max(v for _, v in items) or 1
    row, label_w, bar_w = 22, 190, width - 190 - 90
    parts = ['<svg class="chart" width="%d" height="%d" role="img">' % (width, row * len(items) + 4)]
    for i, (label, value) in enumerate(items):
        y = i * row + 2
        w = max(1, int(bar_w * value / top))
        parts.append('<text x="0" y="%d">%s</text><rect x="%d" y="%d" width="%d" height="%d" fill="%s"></rect>'
                     '<text x="%d" y="%d">%s%s</text>' % (y + 14, html.escape(label[:32]), label_w, y + 3, w, row - 8, color,
                                                          label_w + w + 6, y + 14, value, unit))
    parts.append("</svg>")
    return "".join(parts)


def _vbars(items, width=380, height=110, color="#b42318"):
    """502s per hour: vertical bars over time, first and last hour labelled, the peak marked."""
    items = list(items)
    if not items:
        return '<p class="muted">no 502/503/504 in the window</p>'
    top = max(v for _, v in items) or 1
    bar = max(3, min(24, (width - 40) // len(items)))
    parts = ['<svg class="chart" width="%d" height="%d" role="img">' % (width, height + 24)]
    for i, (label, value) in enumerate(items):
        h = max(1, int((height - 14) * value / top))
        parts.append('<rect x="%d" y="%d" width="%d" height="%d" fill="%s"><title>%s: %s</title></rect>' % (
            34 + i * bar, height - h, bar - 2, h, color, html.escape(label), value))
    parts.append('<text x="0" y="12">%s</text><text x="0" y="%d">0</text>' % (top, height))
    first, last = (items[0][0][5:].replace("T", " ") + "h"), (items[-1][0][5:].replace("T", " ") + "h")
    span = first if len(items) == 1 else "%s to %s" % (first, last)
    parts.append('<text x="34" y="%d">%s</text>' % (height + 18, html.escape(span)))
    parts.append("</svg>")
    return "".join(parts)


def wp502_report_html(summary, title="wp502 fleet audit", when=""):
    esc = html.escape
    out = ["<!doctype html><html lang=en><head><meta charset=utf-8><title>%s</title><style>%s</style></head><body>" % (
        esc(title), _CSS), "<h1>%s</h1>" % esc(title)]
    if when:
        out.append('<p class="muted">%s &middot; %d hosts &middot; %s</p>' % (esc(when), summary["hosts"], esc(", ".join(
            "%d %s" % (n, _STATUS_LABEL.get(s, s)) for s, n in sorted(summary["statuses"].items())))))
    out.append('<table id="verdicts"><thead><tr><th>host</th><th>status</th><th>top cause</th><th>confidence</th>'
               "<th>evidence</th><th>origin</th><th>ladder / next step</th></tr></thead><tbody>")
    for r in summary["rows"]:
        cls = "healthy" if r.get("top_cause") == "healthy" else "bad" if r.get("top_cause") else "muted"
        cause = (r.get("top_cause") or "-") + (" (%s)" % r["slug"] if r.get("slug") else "")
        out.append('<tr data-host="%s"><td>%s</td><td>%s</td><td class="%s">%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>' % (
            esc(r["host"]), esc(r["host"]), esc(_STATUS_LABEL.get(r["status"], r["status"])), cls, esc(cause),
            "" if r.get("confidence") is None else r["confidence"], esc((r.get("evidence") or "")[:300]),
            esc(", ".join("%s %s" % (k, v) for k, v in (r.get("origin") or {}).items())),
            esc(", ".join(r.get("rungs") or []) or (r.get("next_step") or ""))))
    out.append("</tbody></table>")
    out.append('<h2>Causes across the fleet</h2><div id="causes">%s</div>' % _hbars(
        [(c, n) for c, n in summary["causes"].items()], unit=" hosts"))
    out.append('<h2>502/503/504 per hour</h2><div id="per-hour">')
    for r in summary["rows"]:
        hours = sorted((r.get("by_hour") or {}).items())[-48:]
        out.append('<figure class="chart"><figcaption>%s: %d</figcaption>%s</figure>' % (
            esc(r["host"]), sum(v for _, v in hours), _vbars(hours)))
    out.append('</div><h2>Worker memory against pool limits</h2><div id="memory">')
    for r in summary["rows"]:
        for p in r.get("pools") or []:
            rss = p.get("rss_p95") or 0
            out.append('<figure class="chart"><figcaption>%s, pool %s: %s of %s workers busy or idle, p95 %s, '
                       'recommended pm.max_children %s</figcaption>%s</figure>' % (
                           esc(r["host"]), esc(str(p.get("name"))), p.get("workers"), p.get("max_children"), _mib(rss),
                           p.get("recommended") or "-", _hbars([
                               ("workers now", (p.get("workers") or 0) * rss // 1048576),
                               ("at pm.max_children", (p.get("max_children") or 0) * rss // 1048576),
                               ("at the recommendation", (p.get("recommended") or 0) * rss // 1048576),
                               ("RAM left for PHP", (p.get("available") or 0) // 1048576)], unit=" MiB", color="#1f6feb")))
    out.append("</div>")
    for kind in ("cause", "suspect", "signature"):
        shared = summary["shared"][kind]
        if shared:
            out.append("<h2>Hosts sharing a %s</h2><ul>" % kind)
            out += ["<li>%s: %s</li>" % (esc(k), esc(", ".join(v))) for k, v in sorted(shared.items())]
            out.append("</ul>")
    # The data behind the page, for tools; "</" is escaped so no string can close the script element.
    out.append('<script type="application/json" id="summary">%s</script></body></html>' % json.dumps(summary).replace(
        "</", "<\\/"))
    return "".join(out)


def _label(value):
    """A Prometheus label value: backslash, double quote and newline escaped."""
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def wp502_report_prometheus(summary, timestamp=None):
    """The audit as a node_exporter textfile-collector file (Prometheus text format 0.0.4): per host,
    whether it was audited, its top cause (and confidence), the origin's answers and each 502-class
    signature count of the window."""
    rows = summary.get("rows") or []
    families = [
        ("wp502_audited", "1 when the host was audited, 0 when it was unreachable or its evidence failed.",
         [({"host": r["host"], "status": r["status"]}, 0 if r["status"] in ("unreachable", "failed") else 1) for r in rows]),
        ("wp502_verdict", "The host's most likely cause of 502s (1 for the cause named).",
         [({"host": r["host"], "cause": r["top_cause"]}, 1) for r in rows if r.get("top_cause")]),
        ("wp502_verdict_confidence", "Confidence of the top cause, 0 to 1.",
         [({"host": r["host"], "cause": r["top_cause"]}, r.get("confidence") or 0) for r in rows if r.get("top_cause")]),
        ("wp502_origin_status", "HTTP status the origin answered per path (0: no answer).",
         [({"host": r["host"], "path": path}, status or 0) for r in rows for path, status in sorted((r.get("origin") or {}).items())]),
        ("wp502_signature_count", "502-class log signatures counted in the audit window.",
         [({"host": r["host"], "signature": sig}, n) for r in rows for sig, n in sorted((r.get("signatures") or {}).items())]),
    ]
    out = []
    for name, help_text, samples in families:
        out.append("# HELP %s %s" % (name, help_text))
        out.append("# TYPE %s gauge" % name)
        for labels, value in samples:
            out.append("%s{%s} %s" % (name, ",".join('%s="%s"' % (k, _label(v)) for k, v in labels.items()), value))
    if timestamp is not None:
        out += ["# HELP wp502_audit_timestamp_seconds When the audit ran (Unix time).",
                "# TYPE wp502_audit_timestamp_seconds gauge", "wp502_audit_timestamp_seconds %d" % int(timestamp)]
    return "\n".join(out) + "\n"


def wp502_emergency_outcome(result):
    """What happened to a host in an emergency run, decided in one place for every surface (console,
    report, webhook, the wp502 command, the run's exit status): ``{"state", "ok", "line"}``.

    ``ok`` is true only when nothing is left broken on the host: it was healed (the probe after a
    rung answered) or its origin already answered. A host refused, unreachable, not healed, whose
    site fails only through its CDN, or only planned for (check mode), is not ok.
    """
    result = result or {}
    cause = result.get("top_cause") or "unknown"
    stopped = result.get("stopped") or ""
    if result.get("unreachable"):
        return {"state": "unreachable", "ok": False, "line": "unreachable: %s" % result["unreachable"]}
    if result.get("refused"):
        return {"state": "refused", "ok": False, "line": "refused: %s" % result["refused"]}
    if result.get("healed_by") and result.get("healed", True):
        culprits = result.get("culprits") or []
        return {"state": "healed", "ok": True, "line": "%s, healed by %s%s" % (
            cause, result["healed_by"], " (culprit: %s)" % ", ".join(culprits) if culprits else "")}
    if stopped == "healthy":
        return {"state": "healthy", "ok": True, "line": "%s, stopped: healthy (the origin answers; nothing changed)" % cause}
    if stopped == "cdn_only":
        return {"state": "cdn_only", "ok": False, "line": "%s, stopped: cdn_only (the origin answers; the CDN fails: %s)" % (
            cause, result.get("next_step") or "check the CDN")}
    if result.get("check_mode"):
        return {"state": "planned", "ok": False, "line": "%s, check mode: nothing changed, the site still fails; would climb %s" % (
            cause, ", ".join(r.get("rung", "?") for r in result.get("rungs") or []) or "no rung")}
    if stopped:
        return {"state": "stopped", "ok": False, "line": "%s, NOT healed, stopped: %s; next: %s" % (
            cause, stopped, result.get("next_step") or "see the evidence")}
    return {"state": "not_healed", "ok": False, "line": "%s, NOT healed; next: %s" % (cause, result.get("next_step") or "see the evidence")}


def wp502_emergency_line(result):
    """One line for an emergency run's outcome on a host (notifications, summaries)."""
    return wp502_emergency_outcome(result)["line"]


def wp502_emergency_html(results, title="wp502 emergency run", when=""):
    """An emergency run's fleet report: per host the outcome, and every rung with what it did and how
    long it took (inline SVG bars), self-contained like the audit's page."""
    esc = html.escape
    out = ["<!doctype html><html lang=en><head><meta charset=utf-8><title>%s</title><style>%s</style></head><body>" % (
        esc(title), _CSS), "<h1>%s</h1>" % esc(title)]
    if when:
        out.append('<p class="muted">%s &middot; %d hosts</p>' % (esc(when), len(results)))
    out.append('<table id="outcomes"><thead><tr><th>host</th><th>top cause</th><th>outcome</th><th>culprits</th>'
               "<th>journal / undo</th></tr></thead><tbody>")
    for host, given in sorted((results or {}).items()):
        r = given or {}
        ok = wp502_emergency_outcome(r)["ok"]
        out.append('<tr data-host="%s"><td>%s</td><td>%s</td><td class="%s">%s</td><td>%s</td><td>%s</td></tr>' % (
            esc(host), esc(host), esc(r.get("top_cause") or "-"), "healthy" if ok else "bad",
            esc(wp502_emergency_line(r)), esc(", ".join(r.get("culprits") or [])),
            esc(" ".join(x for x in (r.get("journal"), r.get("rollback")) if x))))
    out.append('</tbody></table><h2>Rungs</h2><div id="rungs">')
    for host, r in sorted((results or {}).items()):
        rungs = (r or {}).get("rungs") or []
        out.append('<figure class="chart" data-host="%s"><figcaption>%s: %s</figcaption>%s<table>' % (
            esc(host), esc(host), "no rung climbed" if not rungs else "%d rung(s), %.1f s" % (
                len(rungs), sum(float(x.get("seconds") or 0) for x in rungs)),
            _hbars([("%s%s" % (x.get("rung"), " (healed)" if x.get("healed") else ""), float(x.get("seconds") or 0))
                    for x in rungs], unit=" s", color="#1f6feb") if rungs else ""))
        for x in rungs:
            out.append('<tr data-rung="%s"><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>' % (
                esc(str(x.get("rung"))), esc(str(x.get("rung"))), "healed" if x.get("healed") else "not healed",
                esc(", ".join(str(c) for c in x.get("origin") or [])), esc(str(x.get("note") or ""))))
        out.append("</table></figure>")
    out.append("</div>")
    out.append('<script type="application/json" id="results">%s</script></body></html>' % json.dumps(results).replace(
        "</", "<\\/"))
    return "".join(out)


class FilterModule:
    """wp502 report filters."""

    def filters(self):
        return {"wp502_fleet_summary": wp502_fleet_summary, "wp502_report_markdown": wp502_report_markdown,
                "wp502_report_html": wp502_report_html, "wp502_report_prometheus": wp502_report_prometheus,
                "wp502_emergency_line": wp502_emergency_line,
                "wp502_emergency_outcome": wp502_emergency_outcome, "wp502_emergency_html": wp502_emergency_html}
