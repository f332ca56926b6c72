# -*- coding: utf-8 -*-
# Copyright: wp502 contributors
# MIT License (see LICENSE)
"""Filters that turn per-host wp502 evidence into a fleet summary, a Markdown page and a
self-contained HTML page (inline SVG charts, no external assets). Controller side."""

from __future__ import annotations

import hashlib
import html
import importlib.util
import json
import os
import sys
from collections import Counter

_STATUS_LABEL = {"ok": "audited", "unreachable": "unreachable", "failed": "audit failed", "no_fpm": "no PHP-FPM",
                 "no_wordpress": "no WordPress"}


def _statuses(probes):
    """{path: status} of a probe result ({path: {status, ...}})."""
    return dict((k, (v or {}).get("status")) for k, v in (probes or {}).items())


def _answers(probes):
    """True when every path of a probe answered below 500 (a redirect or a login page counts)."""
    statuses = list(_statuses(probes).values())
    return bool(statuses) and all(isinstance(s, int) and 0 < s < 500 for s in statuses)


def _site_row(host, site):
    """One site of a host's evidence (evidence.sites[i]) as a summary row."""
    verdict = site.get("verdict") or [{}]
    top = verdict[0] if isinstance(verdict[0], dict) else {}
    http = site.get("http") or {}
    row = {
        "host": host, "site": site.get("id"), "names": list(site.get("names") or []), "docroot": site.get("docroot"),
        "server": site.get("server"), "pools": list(site.get("pools") or []), "url": site.get("url"),
        "top_cause": site.get("top_cause") or top.get("cause"), "confidence": top.get("confidence"),
        "slug": top.get("slug"), "evidence": [str(x) for x in (top.get("evidence") or [])][:5],
        "rungs": top.get("rungs") or [], "next_step": top.get("next_step"),
        "causes": [c.get("cause") for c in verdict if isinstance(c, dict) and c.get("cause")],
        "failing": bool(site.get("failing")), "origin": _statuses(http.get("origin")),
        "wordpress": bool(site.get("wordpress")),
    }
    if http.get("public"):
        row["public"] = _statuses(http["public"])
    if http.get("cdn") or http.get("ray_id"):
        row["cdn"], row["ray_id"] = http.get("cdn"), http.get("ray_id")
    return row


def _fallback_site_row(host, result, top, verdict):
    """Older evidence (no ``sites`` key): its one probed site, from the host-level fields."""
    http = result.get("http") or {}
    wp = (result.get("wordpress") or [{}])[0] or {}
    if "origin_healthy" in http:
        failing = http["origin_healthy"] is False
    elif http.get("origin"):
        failing = not _answers(http["origin"])
    else:
        failing = top.get("cause") not in (None, "healthy")
    failing = failing or bool(http.get("public") and not _answers(http["public"]))
    row = {
        "host": host, "site": wp.get("host") or wp.get("path") or "", "names": [wp["host"]] if wp.get("host") else [],
        "docroot": wp.get("path"), "server": (result.get("frontend") or {}).get("kind"), "pools": [], "url": None,
        "top_cause": top.get("cause"), "confidence": top.get("confidence"), "slug": top.get("slug"),
        "evidence": [str(x) for x in (top.get("evidence") or [])][:5], "rungs": top.get("rungs") or [],
        "next_step": top.get("next_step"), "causes": [c.get("cause") for c in verdict if c.get("cause")],
        "failing": failing, "origin": _statuses(http.get("origin")), "wordpress": bool(wp), "fallback": True,
    }
    if http.get("public"):
        row["public"] = _statuses(http["public"])
    if http.get("cdn") or http.get("ray_id"):
        row["cdn"], row["ray_id"] = http.get("cdn"), http.get("ray_id")
    return row


def _worst(sites):
    """The host's verdict is its worst site's: a failing site before an answering one, then the higher
    top confidence; the first such site in discovered order."""
    best = None
    for i, s in enumerate(sites):
        key = (1 if s.get("failing") else 0, s.get("top_cause") not in (None, "healthy"), s.get("confidence") or 0, -i)
        if best is None or key > best[0]:
            best = (key, s)
    return best[1] if best else None


def _host_row(host, result, state):
    if state in ("unreachable", "failed") or not result:
        return {"host": host, "status": state or "unreachable", "top_cause": None, "confidence": None, "sites": []}
    verdict = [c for c in result.get("verdict") or [] if isinstance(c, dict)]
    given_sites = result.get("sites")
    if isinstance(given_sites, list):
        sites = [_site_row(host, s) for s in given_sites if isinstance(s, dict)]
        if not verdict and sites:
            # The evidence's host verdict is its worst site's (the contract); rebuilt from that site if absent.
            worst = next(s for s in given_sites if isinstance(s, dict) and s.get("id") == _worst(sites)["site"])
            verdict = [dict(c, site=worst.get("id")) for c in worst.get("verdict") or [] if isinstance(c, dict)]
    else:
        sites = None
    top = (verdict or [{}])[0]
    if sites is None:
        sites = [_fallback_site_row(host, result, top, verdict)]
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
        "site": top.get("site"),
        "origin": _statuses(origin),
        "signatures": dict((k, v.get("count", 0)) for k, v in (logs.get("signatures") or {}).items() if v.get("count")),
        "suspects": ["%s:%s" % (s.get("type"), s.get("slug")) for s in (logs.get("suspects") or [])[:5]],
        "by_hour": (result.get("peak_hours") or {}).get("by_hour") or {},
        "frontend": (result.get("frontend") or {}).get("kind"), "pools": pools,
        "errors": len(result.get("errors") or []),
        "sites": sites, "failing_sites": [s["site"] for s in sites if s["failing"]],
        "probe": result.get("probe") or None,
        "culprits": _row_culprits(result, top),
    }


def _row_culprits(result, top):
    """The plugins a host's evidence blames: the culprits it names (a run that bisected), else the plugin
    its top cause names (its slug)."""
    named = [str(c) for c in result.get("culprits") or [] if c]
    return named or ([str(top["slug"])] if top.get("slug") else [])


def wp502_host_evidence(hostvars, host):
    """A host's ``wp502_evidence_result`` as its module returned it, read the same way by every reader of a fleet's
    evidence (the summary here, the report action writing ``hosts/HOST.json``). From Ansible's ``hostvars``,
    ``raw_get``: the host's variables as they are, not templated. Evidence is data, never a template, and
    ``hostvars[host][name]`` templates (copies) every value of it: a second walk of each host's evidence
    beside the one that serialises it (about 40% of the summary's time at 1000 hosts, docs/benchmarks.md).
    From a plain mapping (the wp502 command's merge, tests), as it is. None when the host has none."""
    raw_get = getattr(hostvars, "raw_get", None)
    if raw_get is not None:
        data = raw_get(host)
        return data.get("wp502_evidence_result") if isinstance(data, dict) else None
    hv = hostvars.get(host, {})
    return hv.get("wp502_evidence_result") if hasattr(hv, "get") else None


def wp502_fleet_summary(hostvars, hosts, unreachable=None, failed=None):
    """Summary of an audit: one row per host (audited or not) holding a row per site (``sites``),
    causes across the fleet (per host and per site), and the hosts that share a cause, a signature
    or a suspect plugin."""
    unreachable = set(unreachable or [])
    failed = set(failed or [])
    rows = []
    for host in hosts:
        result = wp502_host_evidence(hostvars, host)
        state = "unreachable" if host in unreachable else "failed" if host in failed or not result else None
        rows.append(_host_row(host, result, state))
    causes = Counter(r["top_cause"] for r in rows if r["top_cause"])
    site_causes = Counter(s["top_cause"] for r in rows for s in r["sites"] if s.get("top_cause"))
    index = _shared_index(rows)
    statuses = Counter(r["status"] for r in rows)
    return {
        "hosts": len(rows), "rows": wp502_unhealthy_first(rows), "statuses": dict(statuses),
        "causes": dict(causes.most_common()),
        "sites": sum(len(r["sites"]) for r in rows), "site_causes": dict(site_causes.most_common()),
        "failing_sites": [{"host": r["host"], "site": s["site"], "top_cause": s["top_cause"]}
                          for r in rows for s in r["sites"] if s["failing"]],
        "shared": dict((kind, dict((k, v) for k, v in index[key].items() if len(v) > 1))
                       for kind, key in (("cause", "cause_slug"), ("signature", "signature"), ("suspect", "suspect"))),
        "groups": _groups(index),
        "unhealthy": sorted(r["host"] for r in rows if _is_unhealthy(r)),
    }


# What hosts can share, as the groups of the summary name it (``key.kind``).
GROUP_KINDS = ("cause", "culprit", "signature", "suspect")
# A group needs this many hosts; a cause every healthy host shares is not a group worth reading.
GROUP_MIN_HOSTS = 2
GROUP_IGNORED_CAUSES = ("healthy",)


def _is_unhealthy(row):
    return row.get("top_cause") not in (None, "healthy")


def _unhealthy_first(row):
    """Sort key of the host rows: hosts with a cause other than healthy first, in the order given."""
    return 0 if _is_unhealthy(row) else 1


def wp502_unhealthy_first(rows):
    """Host rows (``{"host", "top_cause", ...}``) in the order the summary gives its own: hosts with a cause other
    than healthy first, the others after them, each in the order given."""
    return sorted(rows, key=_unhealthy_first)


# Hosts a bounded listing names (the audit's console, the wp502 command's tables); the others are counted.
BOUNDED_HOSTS = 20


def wp502_bounded(items, limit=BOUNDED_HOSTS):
    """Where every bounded listing of hosts is cut (the audit's console, the wp502 command's tables), so that a
    fleet of 5000 hosts prints as many lines as one of 50: the first ``limit`` items and how many are left out,
    ``(shown, more)``. ``limit`` None: all of them; 0 or less: none (only counted)."""
    items = list(items)
    if limit is None:
        return items, 0
    shown = items[:max(0, int(limit))]
    return shown, len(items) - len(shown)


def _shared_index(rows):
    """What each host shares with others, one pass over the rows: ``{kind: {value: [hosts]}}`` for the
    group kinds, plus ``cause_slug`` (the cause with the plugin it names, as ``shared.cause`` keys it)."""
    index = dict((kind, {}) for kind in (*GROUP_KINDS, "cause_slug"))

    def add(kind, value, host):
        index[kind].setdefault(value, {})[host] = None  # a dict: each host once, in the rows' order

    for r in rows:
        host = r["host"]
        if r["top_cause"]:
            add("cause_slug", r["top_cause"] + (":" + r["slug"] if r.get("slug") else ""), host)
            if r["top_cause"] not in GROUP_IGNORED_CAUSES:
                add("cause", r["top_cause"], host)
        for culprit in r.get("culprits") or []:
            add("culprit", culprit, host)
        for sig in r.get("signatures") or {}:
            add("signature", sig, host)
        for sus in r.get("suspects") or []:
            add("suspect", sus, host)
    return dict((kind, dict((value, list(hosts)) for value, hosts in values.items())) for kind, values in index.items())


def _groups(index):
    """Hosts sharing a cause, a culprit plugin, a signature or a suspect: ``[{"key": {"kind", "value"},
    "hosts"}]``, the largest first, then by kind and value (the same order for the same audit)."""
    groups = [{"key": {"kind": kind, "value": value}, "hosts": list(hosts)}
              for kind in GROUP_KINDS for value, hosts in index[kind].items() if len(hosts) >= GROUP_MIN_HOSTS]
    return sorted(groups, key=lambda g: (-len(g["hosts"]), g["key"]["kind"], str(g["key"]["value"])))


def wp502_site_verdicts(summary):
    """The sites of an audit's summary in brief, for set_stats and the wp502 command:
    ``{host: [{"site", "top_cause", "failing"}]}`` (a host not audited has none)."""
    return dict((r["host"], [{"site": s.get("site"), "top_cause": s.get("top_cause"), "failing": bool(s.get("failing"))}
                             for s in r.get("sites") or []]) for r in (summary or {}).get("rows") or [])


def _mib(value):
    return "%d MiB" % (value // (1024 * 1024)) if value else "-"


def _md(text, limit=None):
    """A Markdown table cell: pipes escaped, one line, cut at ``limit`` characters."""
    text = str(text).replace("\n", " ").replace("|", "\\|")
    return text[:limit] if limit else text


def _host_status(row):
    """The host's status, with how many of its sites fail when it has more than one."""
    label = _STATUS_LABEL.get(row["status"], row["status"])
    sites = row.get("sites") or []
    if len(sites) > 1:
        failing = sum(1 for s in sites if s.get("failing"))
        label += ", %d of %d sites failing" % (failing, len(sites)) if failing else ", %d sites answer" % len(sites)
    return label


def wp502_report_markdown(summary, title="wp502 fleet audit", when=""):
    lines = ["# %s" % title, ""]
    if when:
        counts = ", ".join("%d %s" % (n, _STATUS_LABEL.get(s, s)) for s, n in sorted(summary["statuses"].items()))
        lines += ["%s. %d hosts: %s." % (when, summary["hosts"], counts) if summary["hosts"]
                  else "%s. No host matched the audit's host pattern." % when, ""]
    lines += ["| host | status | site | failing | top cause | confidence | evidence | origin / , /wp-login.php | next |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in summary["rows"]:
        # A row per site; the host and its status only on the first row of its group.
        host_cells = [_md(r["host"]), _md(_host_status(r))]
        for site in r.get("sites") or [None]:
            s = site or r
            cause = (s.get("top_cause") or "-") + (" (%s)" % s["slug"] if s.get("slug") else "")
            origin = ", ".join(str(v) for v in (s.get("origin") or {}).values()) or "-"
            if site and site.get("public"):
                origin += "; public " + ", ".join(str(v) for v in site["public"].values())
            if site and (site.get("cdn") or site.get("ray_id")):
                origin += " (%s%s)" % (site.get("cdn") or "CDN", ", Ray ID %s" % site["ray_id"] if site.get("ray_id") else "")
            nxt = ", ".join(s.get("rungs") or []) or (s.get("next_step") or "-")
            evidence = s.get("evidence") or "-"
            if isinstance(evidence, list):
                evidence = "; ".join(evidence) or "-"
            lines.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
                " | ".join(host_cells), _md(site.get("site") or "-") if site else "-",
                ("**yes**" if site.get("failing") else "no") if site else "-", _md(cause),
                s["confidence"] if s.get("confidence") is not None else "-", _md(evidence, 160), _md(origin),
                _md(nxt, 160)))
            host_cells = ["", ""]
    lines += ["", "## Causes across the fleet", ""]
    lines += ["- %s: %d" % (c, n) for c, n in summary["causes"].items()] or ["- none"]
    # The groups as the page's overview shows them: the largest first, the first OVERVIEW_GROUPS.
    groups = summary.get("groups") or []
    lines += ["", "## Groups: hosts that share something", ""]
    for g in groups[:OVERVIEW_GROUPS]:
        hosts = [str(h) for h in g["hosts"]]
        more = len(hosts) - OVERVIEW_GROUP_HOSTS
        lines.append("- %d hosts share the %s `%s`: %s%s" % (
            len(hosts), g["key"]["kind"], _md(g["key"]["value"]).replace("`", "'"), _md(", ".join(hosts[:OVERVIEW_GROUP_HOSTS])),
            " and %d more" % more if more > 0 else ""))
    if not groups:
        lines.append("- none: no two hosts share a cause, a culprit, a signature or a suspect")
    elif len(groups) > OVERVIEW_GROUPS:
        lines.append("- and %d more groups (summary.json holds them all)" % (len(groups) - OVERVIEW_GROUPS))
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
figcaption{font-size:12px;color:#444;margin-bottom:4px}
tbody.host{border-top:2px solid #999}tbody.host th{background:#fafafa;max-width:24em;font-weight:600}
tr.failing td{background:#fff4f2}thead th{position:sticky;top:0}#groups li{cursor:pointer}"""


def _hbars(items, unit="", color="#445", width=520):
    """Labelled horizontal bars, as inline SVG: one row per (label, value)."""
    items = [(str(k), v or 0) for k, v in items]
    if not items:
        return '<p class="muted">none</p>'
    top = max(v for _label, v in items) or 1
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
    top = max(v for _hour, v in items) or 1
    step = max(3, min(24, (width - 40) // len(items)))
    parts = ['<svg class="chart" width="%d" height="%d" role="img">' % (width, height + 24)]
    for i, (label, value) in enumerate(items):
        h = max(1, int((height - 14) * value / top))
        parts.append('<rect x="%d" y="%d" width="%d" height="%d" fill="%s"><title>%s: %s</title></rect>' % (
            34 + i * step, height - h, step - 2, h, color, html.escape(label), value))
    parts.append('<text x="0" y="12">%s</text><text x="0" y="%d">0</text>' % (top, height))
    first, last = (items[0][0][5:].replace("T", " ") + "h"), (items[-1][0][5:].replace("T", " ") + "h")
    span = first if len(items) == 1 else "%s to %s" % (first, last)
    parts.append('<text x="34" y="%d">%s</text>' % (height + 18, html.escape(span)))
    parts.append("</svg>")
    return "".join(parts)


# Groups shown on the overview, and hosts named per group; the rest are counted.
OVERVIEW_GROUPS = 20
OVERVIEW_GROUP_HOSTS = 12

# Filters the host table in the page as the search box is typed into: a host's tbody stays when every
# word typed is in its text (or its data-filter words). Inline, no external asset: the page works from disk.
_SEARCH_JS = """<script>(function () {
  var box = document.getElementById('search'), shown = document.getElementById('shown');
  var bodies = Array.prototype.slice.call(document.querySelectorAll('#verdicts tbody.host'));
  var texts = bodies.map(function (b) { return (b.textContent + ' ' + (b.getAttribute('data-filter') || '')).toLowerCase(); });
  function apply() {
    var words = box.value.toLowerCase().split(/\\s+/).filter(Boolean), n = 0;
    bodies.forEach(function (b, i) {
      var keep = words.every(function (w) { return texts[i].indexOf(w) >= 0; });
      b.style.display = keep ? '' : 'none';
      if (keep) { n += 1; }
    });
    shown.textContent = n + ' of ' + bodies.length + ' hosts';
  }
  box.addEventListener('input', apply);
  Array.prototype.forEach.call(document.querySelectorAll('#groups [data-value]'), function (li) {
    li.addEventListener('click', function () { box.value = li.getAttribute('data-value'); apply(); box.focus(); });
  });
  if (box.value) { apply(); }
})();</script>"""


def _overview(summary):
    """The top of the page: hosts by status, causes across the fleet (a chart), then the groups of hosts
    sharing something, the largest first (the first OVERVIEW_GROUPS, the rest counted)."""
    esc = html.escape
    out = ['<section id="overview"><h2>Overview</h2><ul id="statuses">']
    out += ['<li data-status="%s">%d %s</li>' % (esc(s), n, esc(_STATUS_LABEL.get(s, s)))
            for s, n in sorted(summary["statuses"].items(), key=lambda x: (-x[1], x[0]))]
    out.append('</ul><h3>Causes across the fleet</h3><div id="causes">%s</div>' % _hbars(
        list(summary["causes"].items()), unit=" hosts"))
    groups = summary.get("groups") or []
    out.append('<h3>Hosts that share something</h3><ol id="groups">')
    for g in groups[:OVERVIEW_GROUPS]:
        kind, value, hosts = g["key"]["kind"], str(g["key"]["value"]), g["hosts"]
        more = len(hosts) - OVERVIEW_GROUP_HOSTS
        out.append('<li data-kind="%s" data-value="%s" title="filter the hosts by it"><b>%d hosts</b> share the %s '
                   '<code>%s</code>: %s%s</li>' % (
                       esc(kind), esc(value), len(hosts), esc(kind), esc(value),
                       esc(", ".join(hosts[:OVERVIEW_GROUP_HOSTS])), " and %d more" % more if more > 0 else ""))
    out.append("</ol>")
    if not groups:
        out.append('<p class="muted">no two hosts share a cause, a culprit, a signature or a suspect</p>')
    elif len(groups) > OVERVIEW_GROUPS:
        out.append('<p class="muted" id="more-groups">and %d more groups (summary.json holds them all)</p>' % (
            len(groups) - OVERVIEW_GROUPS))
    out.append("</section>")
    return "".join(out)


# What the fleet page's embedded data keeps of each host row; the rest is on the host's page.
_BRIEF_ROW_KEYS = ("host", "status", "top_cause", "confidence", "slug", "failing_sites", "culprits")


def wp502_report_html(summary, title="wp502 fleet audit", when=""):
    esc = html.escape
    out = ["<!doctype html><html lang=en><head><meta charset=utf-8><title>%s</title><style>%s</style></head><body>" % (
        esc(title), _CSS), "<h1>%s</h1>" % esc(title)]
    if when:
        out.append('<p class="muted">%s &middot; %d hosts &middot; %s</p>' % (esc(when), summary["hosts"], esc(", ".join(
            "%d %s" % (n, _STATUS_LABEL.get(s, s)) for s, n in sorted(summary["statuses"].items())))))
    out.append(_overview(summary))
    out.append('<h2>Hosts</h2><p><input id="search" type="search" placeholder="filter hosts: name, cause, plugin, signature" '
               'aria-label="filter hosts" size="48"> <span id="shown" class="muted">%d hosts</span></p>' % len(summary["rows"]))
    out.append('<table id="verdicts"><thead><tr><th>host</th><th>status</th><th>site</th><th>top cause</th>'
               "<th>confidence</th><th>evidence</th><th>origin</th><th>public / CDN</th><th>ladder / next step</th>"
               "</tr></thead>")
    for r in summary["rows"]:
        # One tbody per host: its cell spans its sites, so fifteen sites read as one group.
        sites = r.get("sites") or [None]
        # What the row does not show but the search box finds: its suspects, signatures and culprits.
        words = " ".join(list(r.get("suspects") or []) + list(r.get("signatures") or {}) + list(r.get("culprits") or []))
        out.append('<tbody class="host" data-host="%s"%s>' % (esc(r["host"]), ' data-filter="%s"' % esc(words) if words else ""))
        for i, site in enumerate(sites):
            s = site or r
            cls = "healthy" if s.get("top_cause") == "healthy" else "bad" if s.get("top_cause") else "muted"
            cause = (s.get("top_cause") or "-") + (" (%s)" % s["slug"] if s.get("slug") else "")
            evidence = s.get("evidence") or []
            if not isinstance(evidence, list):
                evidence = [evidence] if evidence else []
            public = ""
            if site and (site.get("public") or site.get("cdn") or site.get("ray_id")):
                public = ", ".join("%s %s" % (k, v) for k, v in (site.get("public") or {}).items())
                if site.get("cdn") or site.get("ray_id"):
                    public += " (%s%s)" % (site.get("cdn") or "CDN", ", Ray ID %s" % site["ray_id"] if site.get("ray_id") else "")
            head = ""
            if i == 0:
                head = '<th scope="rowgroup" rowspan="%d"><a href="%s">%s</a></th><td rowspan="%d">%s</td>' % (
                    len(sites), esc(wp502_host_page_path(r["host"])), esc(r["host"]), len(sites), esc(_host_status(r)))
            names = [n for n in (site.get("names") or []) if n != site.get("site")] if site else []
            out.append('<tr data-host="%s"%s%s>%s<td>%s%s</td><td class="%s">%s</td><td>%s</td><td>%s</td><td>%s</td>'
                       "<td>%s</td><td>%s</td></tr>" % (
                           esc(r["host"]), ' data-site="%s"' % esc(str(site.get("site") or "")) if site else "",
                           ' class="failing"' if site and site.get("failing") else "", head,
                           esc(str(site.get("site") or "-")) if site else "-",
                           '<br><span class="muted">%s</span>' % esc(", ".join(names)) if names else "", cls,
                           esc(cause), "" if s.get("confidence") is None else s["confidence"],
                           esc(str(evidence[0])[:160]) if evidence else "",  # every line on the host page
                           esc(", ".join("%s %s" % (k, v) for k, v in (s.get("origin") or {}).items())), esc(public),
                           esc(", ".join(s.get("rungs") or []) or (s.get("next_step") or ""))))
        out.append("</tbody>")
    out.append("</table>")
    out.append(_SEARCH_JS)
    out.append(_SORT_JS)
    if summary.get("sites", 0) > len([r for r in summary["rows"] if r.get("sites")]):
        out.append('<h2>Causes across the sites</h2><div id="site-causes">%s</div>' % _hbars(
            list((summary.get("site_causes") or {}).items()), unit=" sites"))
    for kind in ("cause", "suspect", "signature"):
        shared = summary["shared"][kind]
        if shared:
            out.append("<h2>Hosts sharing a %s</h2><ul>" % kind)
            out += ["<li>%s: %s</li>" % (esc(k), esc(", ".join(v))) for k, v in sorted(shared.items())]
            out.append("</ul>")
    # The data behind the page, for tools, each host in brief with where its page is (summary.json beside the
    # page has every row whole); "</" is escaped so no string can close the script element.
    brief = dict(summary, rows=[dict(dict((k, r.get(k)) for k in _BRIEF_ROW_KEYS), page=wp502_host_page_path(r["host"]))
                                for r in summary["rows"]])
    out.append('<script type="application/json" id="summary">%s</script></body></html>' % json.dumps(brief).replace(
        "</", "<\\/"))
    return "".join(out)


# Sorts the host table by a column as its header is clicked (again: the other way). A host's tbody moves as
# one, keyed by its first row's cell; numbers sort as numbers, ties keep the order given (unhealthy first).
_SORT_JS = """<script>(function () {
  var table = document.getElementById('verdicts');
  var heads = Array.prototype.slice.call(table.querySelectorAll('thead th'));
  heads.forEach(function (th, col) {
    th.style.cursor = 'pointer';
    th.title = 'sort by ' + th.textContent;
    th.addEventListener('click', function () {
      var down = th.getAttribute('aria-sort') === 'ascending';
      heads.forEach(function (h) { h.removeAttribute('aria-sort'); });
      th.setAttribute('aria-sort', down ? 'descending' : 'ascending');
      var bodies = Array.prototype.slice.call(table.querySelectorAll('tbody.host'));
      var keys = bodies.map(function (b, i) {
        var cell = b.rows[0] && b.rows[0].cells[col], text = cell ? cell.textContent.trim().toLowerCase() : '';
        var num = text === '' || isNaN(Number(text)) ? null : Number(text);
        return {body: b, text: text, num: num, i: i};
      });
      keys.sort(function (a, b) {
        var c = a.num !== null && b.num !== null ? a.num - b.num : a.text < b.text ? -1 : a.text > b.text ? 1 : 0;
        return (down ? -c : c) || a.i - b.i;
      });
      keys.forEach(function (k) { table.appendChild(k.body); });
    });
  });
})();</script>"""

# A file name keeps these characters of a host name; every other byte (and "_", the escape itself) is
# written _hh, so two host names never share a file, even on a case-insensitive file system.
_FILE_SAFE = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-")
# Longer names are cut and keep "~" and a digest of the whole name (file names stop at 255 bytes).
_FILE_NAME_MAX = 200


def wp502_host_file(host):
    """A host name as a file name: lower-case letters, digits, "." and "-" kept, every other byte _hh
    (a leading "." too, so no name is hidden, "." or ".."); one host, one name, never another's."""
    raw = str(host).encode("utf-8")
    out = []
    for i, byte in enumerate(raw):
        ch = chr(byte)
        out.append(ch if ch in _FILE_SAFE and not (i == 0 and ch == ".") else "_%02x" % byte)
    name = "".join(out) or "_"
    if len(name) > _FILE_NAME_MAX:
        # "~" is never written otherwise, so a cut name is never a whole one.
        name = name[:_FILE_NAME_MAX - 41] + "~" + hashlib.sha256(raw).hexdigest()[:40]
    return name


def wp502_host_page_path(host):
    """Where a host's own page is, relative to report.html: ``hosts/<file>.html``."""
    return "hosts/%s.html" % wp502_host_file(host)


def wp502_host_html(row, title="wp502 fleet audit", when=""):
    """A host's own page (``hosts/<file>.html``), from its summary row: its verdict, its sites with their
    evidence lines, what its logs share with others, 502s per hour and worker memory (inline SVG).
    Self-contained like the fleet page, which links here and which it links back to."""
    esc = html.escape
    r = row or {}
    host = str(r.get("host"))
    out = ["<!doctype html><html lang=en><head><meta charset=utf-8><title>%s: %s</title><style>%s</style></head><body>" % (
        esc(host), esc(title), _CSS), '<p><a href="../report.html">&larr; %s</a></p>' % esc(title),
        '<h1 data-host="%s">%s</h1>' % (esc(host), esc(host))]
    cause = (r.get("top_cause") or "-") + (" (%s)" % r["slug"] if r.get("slug") else "")
    out.append('<p class="muted">%s%s</p>' % (esc(when) + " &middot; " if when else "", esc(_host_status(r))))
    out.append('<dl id="verdict"><dt>top cause</dt><dd class="%s">%s%s</dd>' % (
        "healthy" if r.get("top_cause") == "healthy" else "bad" if r.get("top_cause") else "muted", esc(cause),
        "" if r.get("confidence") is None else " &middot; confidence %s" % esc(str(r["confidence"]))))
    for label, value in (("ladder / next step", ", ".join(r.get("rungs") or []) or r.get("next_step") or ""),
                         ("culprits", ", ".join(r.get("culprits") or [])), ("suspects", ", ".join(r.get("suspects") or [])),
                         ("signatures", ", ".join("%s: %s" % kv for kv in sorted((r.get("signatures") or {}).items())))):
        if value:
            out.append("<dt>%s</dt><dd>%s</dd>" % (esc(label), esc(str(value))))
    out.append("</dl>")
    out.append('<h2>Sites</h2><table id="sites"><thead><tr><th>site</th><th>names</th><th>docroot</th><th>server</th>'
               "<th>failing</th><th>top cause</th><th>confidence</th><th>evidence</th><th>origin</th><th>public / CDN</th>"
               "<th>ladder / next step</th></tr></thead><tbody>")
    for site in r.get("sites") or []:
        public = ", ".join("%s %s" % kv for kv in (site.get("public") or {}).items())
        if site.get("cdn") or site.get("ray_id"):
            public += " (%s%s)" % (site.get("cdn") or "CDN", ", Ray ID %s" % site["ray_id"] if site.get("ray_id") else "")
        out.append('<tr data-site="%s"%s><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td>'
                   '<td><ul class="evidence">%s</ul></td><td>%s</td><td>%s</td><td>%s</td></tr>' % (
                       esc(str(site.get("site") or "")), ' class="failing"' if site.get("failing") else "",
                       esc(str(site.get("site") or "-")), esc(", ".join(site.get("names") or [])),
                       esc(str(site.get("docroot") or "")), esc(str(site.get("server") or "")),
                       "yes" if site.get("failing") else "no",
                       esc((site.get("top_cause") or "-") + (" (%s)" % site["slug"] if site.get("slug") else "")),
                       "" if site.get("confidence") is None else esc(str(site["confidence"])),
                       "".join("<li>%s</li>" % esc(str(x)) for x in site.get("evidence") or []),
                       esc(", ".join("%s %s" % kv for kv in (site.get("origin") or {}).items())), esc(public),
                       esc(", ".join(site.get("rungs") or []) or (site.get("next_step") or ""))))
    out.append("</tbody></table>")
    if not r.get("sites"):
        out.append('<p class="muted">no site: the host was %s</p>' % esc(_STATUS_LABEL.get(r.get("status"), str(r.get("status")))))
    hours = sorted((r.get("by_hour") or {}).items())[-48:]
    out.append('<h2>502/503/504 per hour</h2><div id="per-hour"><figure class="chart"><figcaption>%s: %d</figcaption>%s'
               "</figure></div>" % (esc(host), sum(v for _hour, v in hours), _vbars(hours)))
    out.append('<h2>Worker memory against pool limits</h2><div id="memory">')
    for p in r.get("pools") or []:
        rss = p.get("rss_p95") or 0
        out.append('<figure class="chart"><figcaption>pool %s: %s of %s workers busy or idle, p95 %s, '
                   'recommended pm.max_children %s</figcaption>%s</figure>' % (
                       esc(str(p.get("name"))), p.get("workers"), p.get("max_children"), _mib(rss),
                       p.get("recommended") or "-", _hbars([
                           ("workers now", (p.get("workers") or 0) * rss // 1048576),
                           ("at pm.max_children", (p.get("max_children") or 0) * rss // 1048576),
                           ("at the recommendation", (p.get("recommended") or 0) * rss // 1048576),
                           ("RAM left for PHP", (p.get("available") or 0) // 1048576)], unit=" MiB", color="#1f6feb")))
    if not r.get("pools"):
        out.append('<p class="muted">no PHP-FPM pool</p>')
    out.append("</div>")
    out.append('<script type="application/json" id="host">%s</script></body></html>' % json.dumps(r).replace("</", "<\\/"))
    return "".join(out)


def wp502_host_pages(summary, title="wp502 fleet audit", when=""):
    """Every host's own page, as the report's files: ``{"hosts/<file>.html": page}``."""
    return dict((wp502_host_page_path(r["host"]), wp502_host_html(r, title, when)) for r in (summary or {}).get("rows") or [])


def _label(value):
    """A Prometheus label value: backslash, double quote and newline escaped."""
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def wp502_report_prometheus(summary, timestamp=None):
    """The audit as a node_exporter textfile-collector file (Prometheus text format 0.0.4).

    Host-level, labelled ``host``: whether it was audited, its verdict (its worst site's) and
    confidence, how many sites it has, each 502-class signature count of the window. Per site,
    labelled ``host`` and ``site``: its verdict and confidence, whether it fails, and what its
    origin (and public URL) answered per path."""
    rows = summary.get("rows") or []
    sites = [s for r in rows for s in r.get("sites") or []]

    def site_labels(s, **extra):
        return dict({"host": s["host"], "site": s.get("site") or ""}, **extra)

    families = [
        ("wp502_audited", "1 when the host was audited, 0 when it was unreachable or its evidence failed.",
         [({"host": r["host"], "status": r["status"]}, 0 if r["status"] in ("unreachable", "failed") else 1) for r in rows]),
        ("wp502_verdict", "The host's most likely cause of 502s, its worst site's (1 for the cause named).",
         [({"host": r["host"], "cause": r["top_cause"]}, 1) for r in rows if r.get("top_cause")]),
        ("wp502_verdict_confidence", "Confidence of the host's top cause, 0 to 1.",
         [({"host": r["host"], "cause": r["top_cause"]}, r.get("confidence") or 0) for r in rows if r.get("top_cause")]),
        ("wp502_sites", "WordPress sites found on the host.",
         [({"host": r["host"]}, len(r.get("sites") or [])) for r in rows if r["status"] not in ("unreachable", "failed")]),
        ("wp502_site_verdict", "The site's most likely cause of 502s (1 for the cause named).",
         [(site_labels(s, cause=s["top_cause"]), 1) for s in sites if s.get("top_cause")]),
        ("wp502_site_verdict_confidence", "Confidence of the site's top cause, 0 to 1.",
         [(site_labels(s, cause=s["top_cause"]), s.get("confidence") or 0) for s in sites if s.get("top_cause")]),
        ("wp502_site_failing", "1 when the site fails (its origin, or its public URL when one is given), else 0.",
         [(site_labels(s), 1 if s.get("failing") else 0) for s in sites]),
        ("wp502_origin_status", "HTTP status the site's origin answered per path (0: no answer).",
         [(site_labels(s, path=path), status or 0) for s in sites for path, status in sorted((s.get("origin") or {}).items())]),
        ("wp502_public_status", "HTTP status the site's public URL answered per path (0: no answer).",
         [(site_labels(s, path=path), status or 0) for s in sites for path, status in sorted((s.get("public") or {}).items())]),
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


def _load_outcome():
    """plugins/module_utils/wp502_outcome.py, where what an emergency run did is worked out for the host
    (wp502_run) and the controller alike, loaded from its file (a controller plugin cannot import a
    module_utils file of the checkout by name)."""
    name = "wp502_outcome_for_filters"
    if name not in sys.modules:
        path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "module_utils", "wp502_outcome.py")
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    return sys.modules[name]


_OUTCOME = _load_outcome()
_answer = _OUTCOME._answer  # pylint: disable=protected-access
# The outcome of a host and of its sites, decided in one place (wp502_outcome.emergency_outcome).
wp502_emergency_sites = _OUTCOME.emergency_sites
wp502_emergency_outcome = _OUTCOME.emergency_outcome
wp502_emergency_line = _OUTCOME.emergency_line


def wp502_emergency_rung(answered, rung, step, failed=False, changed=True, check_mode=False, seconds=0.0, note="",
                         detail=None):
    """A rung as the run records it, from what the sites answered after it (wp502_outcome.rung_record)."""
    return _OUTCOME.rung_record(rung, step, answered, failed=failed, changed=changed, check_mode=check_mode,
                                seconds=seconds, note=note, detail=detail)


def wp502_emergency_site_briefs(sites):
    """What a run's result keeps of each site of the evidence (wp502_outcome.site_brief)."""
    return [_OUTCOME.site_brief(site) for site in sites or []]


def wp502_emergency_run_result(run):
    """A host's emergency result with its outcome (wp502_outcome.run_result), as wp502_run keeps it on the host."""
    return _OUTCOME.run_result(run)


def wp502_emergency_console(done, report=None):
    """An emergency run on the console: one outcome line per host, then a line per site for each host
    with more than one site, then where the report is. ``done``: the hosts' variables, each with
    ``inventory_hostname`` and ``wp502_emergency_result``."""
    lines, sites = [], []
    for hostvars in done or []:
        host, result = hostvars["inventory_hostname"], hostvars.get("wp502_emergency_result") or {}
        lines.append("%s: %s" % (host, wp502_emergency_line(result)))
        if len(result.get("sites") or []) > 1:
            sites += ["%s: %s: %s" % (host, site["state"], site["line"]) for site in wp502_emergency_sites(result)]
    if sites:
        lines += ["Each site of the hosts with more than one:", *sites]
    if report:
        lines.append("Report: %s/report.html" % report)
    return lines


def wp502_emergency_planned(result, host):
    """In check mode, what each rung of a host's ladder would have done, a line each:
    ``"HOST: RUNG would ... (for SITE, ...)"`` (the rung's note, which says ``would`` or is the change), or
    ``"HOST: RUNG: nothing ..."`` when the note says the rung has nothing to do."""
    lines = []
    for rung in (result or {}).get("rungs") or []:
        if not rung.get("planned"):
            continue
        note = (rung.get("note") or "").strip()
        if note.startswith(("nothing ", "no ")):
            # What the rung found it cannot do: said as is ("frontend: nothing the front-end can change ...").
            plan = ": " + note
        else:
            plan = " " + (note if note.startswith("would ") else ("would " + note).rstrip())
        lines.append("%s: %s%s (for %s)" % (host, rung.get("rung", "?"), plan, ", ".join(rung.get("sites") or [])))
    return lines


def wp502_emergency_results(results):
    """An emergency run's results as results.json holds them: per host its result, its decided
    outcome (``state``, ``ok``, ``line``) and, when it has sites, a row per site with its own
    decided ``state``, ``ok`` and ``line`` (before, after, healed_by, culprits as given)."""
    out = {}
    for host, given in sorted((results or {}).items()):
        r = dict(given or {})
        r.update(wp502_emergency_outcome(r))
        if r.get("sites"):
            r["sites"] = wp502_emergency_sites(r)
        out[host] = r
    return out


def wp502_emergency_html(results, title="wp502 emergency run", when=""):
    """An emergency run's fleet report: per host the outcome, and every rung with what it did and how
    long it took (inline SVG bars), self-contained like the audit's page."""
    esc = html.escape
    out = ["<!doctype html><html lang=en><head><meta charset=utf-8><title>%s</title><style>%s</style></head><body>" % (
        esc(title), _CSS), "<h1>%s</h1>" % esc(title)]
    if when:
        out.append('<p class="muted">%s &middot; %d hosts</p>' % (esc(when), len(results)))
    out.append('<table id="outcomes"><thead><tr><th>host</th><th>site</th><th>top cause</th><th>before</th>'
               "<th>after</th><th>outcome</th><th>healed by</th><th>culprits</th><th>journal / undo</th></tr></thead>")
    for host, given in sorted((results or {}).items()):
        r = given or {}
        outcome = wp502_emergency_outcome(r)
        sites = wp502_emergency_sites(r)
        # One tbody per host: the host's cell (its outcome line) and its journal span its sites.
        out.append('<tbody class="host" data-host="%s">' % esc(host))
        undo = esc(" ".join(x for x in (r.get("journal"), r.get("rollback")) if x))
        if not sites:
            out.append('<tr data-host="%s"><th scope="rowgroup">%s</th><td>-</td><td>%s</td><td>-</td><td>-</td>'
                       '<td class="%s">%s</td><td>%s</td><td>%s</td><td>%s</td></tr>' % (
                           esc(host), esc(host), esc(r.get("top_cause") or "-"), "healthy" if outcome["ok"] else "bad",
                           esc(outcome["line"]), esc(str(r.get("healed_by") or "")) if outcome["state"] == "healed" else "",
                           esc(", ".join(r.get("culprits") or [])), undo))
        for i, site in enumerate(sites):
            head = tail = ""
            if i == 0:
                head = '<th scope="rowgroup" rowspan="%d">%s<br><span class="%s">%s</span></th>' % (
                    len(sites), esc(host), "healthy" if outcome["ok"] else "bad", esc(outcome["line"]))
                tail = '<td rowspan="%d">%s</td>' % (len(sites), undo)
            out.append('<tr data-host="%s" data-site="%s" data-state="%s"%s>%s<td>%s</td><td>%s</td><td>%s</td><td>%s</td>'
                       '<td class="%s">%s</td><td>%s</td><td>%s</td>%s</tr>' % (
                           esc(host), esc(site["site"]), esc(site["state"]), "" if site["ok"] else ' class="failing"', head,
                           esc(site["site"]), esc(str(site.get("top_cause") or "-")), esc(_answer(site.get("before"))),
                           esc(_answer(site.get("after"))), "healthy" if site["ok"] else "bad",
                           esc("%s: %s" % (site["state"].replace("_", " "), site["line"])), esc(str(site.get("healed_by") or "")),
                           esc(", ".join(str(c) for c in site.get("culprits") or [])), tail))
        out.append("</tbody>")
    out.append('</table><h2>Rungs</h2><div id="rungs">')
    for host, r in sorted((results or {}).items()):
        rungs = (r or {}).get("rungs") or []
        out.append('<figure class="chart" data-host="%s"><figcaption>%s: %s</figcaption>%s<table>' % (
            esc(host), esc(host), "no rung climbed" if not rungs else "%d rung(s), %.1f s" % (
                len(rungs), sum(float(x.get("seconds") or 0) for x in rungs)),
            _hbars([("%s%s" % (x.get("rung"), " (healed)" if x.get("healed") else ""), float(x.get("seconds") or 0))
                    for x in rungs], unit=" s", color="#1f6feb") if rungs else ""))
        for x in rungs:
            out.append('<tr data-rung="%s"><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>' % (
                esc(str(x.get("rung"))), esc(str(x.get("rung"))), "healed" if x.get("healed") else "not healed",
                esc(", ".join(str(c) for c in x.get("sites") or [])),
                esc(", ".join(str(c) for c in x.get("origin") or [])), esc(str(x.get("note") or ""))))
        out.append("</table></figure>")
    out.append("</div>")
    out.append('<script type="application/json" id="results">%s</script></body></html>' % json.dumps(results).replace(
        "</", "<\\/"))
    return "".join(out)


class FilterModule:
    """wp502 report filters."""

    def filters(self):
        return {"wp502_fleet_summary": wp502_fleet_summary, "wp502_site_verdicts": wp502_site_verdicts,
                "wp502_report_markdown": wp502_report_markdown,
                "wp502_report_html": wp502_report_html, "wp502_host_html": wp502_host_html,
                "wp502_host_pages": wp502_host_pages, "wp502_host_file": wp502_host_file,
                "wp502_report_prometheus": wp502_report_prometheus,
                "wp502_emergency_line": wp502_emergency_line,
                "wp502_emergency_outcome": wp502_emergency_outcome, "wp502_emergency_sites": wp502_emergency_sites,
                "wp502_emergency_results": wp502_emergency_results, "wp502_emergency_planned": wp502_emergency_planned,
                "wp502_emergency_console": wp502_emergency_console,
                "wp502_emergency_rung": wp502_emergency_rung, "wp502_emergency_run_result": wp502_emergency_run_result,
                "wp502_emergency_site_briefs": wp502_emergency_site_briefs,
                "wp502_emergency_html": wp502_emergency_html}
