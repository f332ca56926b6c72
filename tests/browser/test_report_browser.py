"""The fleet report in a real headless Chromium (Debian's chromium): the page loads from disk with
no network, the browser's DOM has the verdict table, the charts and the data, and a screenshot
is kept as a test artifact (artifacts/browser/report.png); hosts with several sites (fifteen on one)
are measured in the laid-out page: the host cell spans its sites and the table fits the window."""

from __future__ import annotations

import html.parser
import json
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "plugins" / "filter"))
import wp502_report as rep  # noqa: E402 - the filter plugin is a plain file, put on the path above

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = ROOT / "artifacts" / "browser"
# As root in a closed network: no sandbox, and none of Chromium's own background connections.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--hide-scrollbars"]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")


def evidence(cause, confidence, slug=None, by_hour=None, workers=5):
    top = {"cause": cause, "confidence": confidence, "evidence": ["why " + cause], "rungs": ["restart_fpm", "plugins"]}
    if slug:
        top["slug"] = slug
    return {
        "verdict": [top], "top_cause": cause,
        "fpm": {"pools": [{"name": "www", "workers": workers, "pm.max_children": 5, "rss_p95": 42 << 20,
                           "recommendation": {"pm.max_children": 40, "basis": {"available_bytes": 3 << 30}}}]},
        "wordpress": [{"path": "/var/www/wordpress"}],
        "http": {"origin": {"/": {"status": 502 if cause != "healthy" else 200}}},
        "logs": {"signatures": {"connect_unavailable": {"count": 12}}, "suspects": []},
        "peak_hours": {"by_hour": by_hour or {}}, "frontend": {"kind": "nginx"},
    }


HOSTVARS = {
    "web1": {"wp502_evidence_result": evidence("fpm_down", 0.95, by_hour={"2026-11-23T20": 40, "2026-11-23T21": 12})},
    "web2": {"wp502_evidence_result": evidence("slow_plugin", 0.8, "heavy-analytics", {"2026-11-23T21": 7})},
    "web3": {"wp502_evidence_result": evidence("healthy", 0.9)},
    "web<4>": {},
}


class DOM(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows, self.svgs, self.ids, self.scripts = [], 0, set(), 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr" and "data-host" in a:
            self.rows.append(a["data-host"])
        if tag == "svg":
            self.svgs += 1
        if tag == "script":
            self.scripts += 1
        if "id" in a:
            self.ids.add(a["id"])


def png_size_and_colours(path: Path) -> tuple[int, int, int]:
    """Width, height and how many distinct byte values the image data holds (a blank page has ~2)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    idat, pos = b"", 8
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    return width, height, len(set(zlib.decompress(idat)))


def screenshot(page: Path, name: str, profile: Path, size: str, timeout: float = 120) -> Path:
    """Chromium's screenshot of ``page`` at ``size`` (width,height) in artifacts/browser/NAME (any old one removed)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / name
    shot.unlink(missing_ok=True)
    subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--window-size={size}", f"--screenshot={shot}",
                    page.as_uri()], capture_output=True, timeout=timeout, check=True)
    return shot


def test_the_report_renders_in_chromium(tmp_path):
    summary = rep.wp502_fleet_summary(HOSTVARS, list(HOSTVARS), unreachable=["web<4>"])
    page = tmp_path / "report.html"
    page.write_text(rep.wp502_report_html(summary, "wp502 fleet audit", "2026-11-24T02:00:00Z"))
    profile = tmp_path / "profile"
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    parsed = DOM()
    parsed.feed(dom)
    assert parsed.rows == ["web1", "web2", "web3", "web<4>"]  # escaped in the source, whole in the browser's DOM
    assert {"verdicts", "causes", "summary"} <= parsed.ids
    assert parsed.svgs == 1  # causes; each host's charts are on its own page
    assert "heavy-analytics" in dom and "unreachable" in dom

    shot = screenshot(page, "report.png", profile, "1280,1600")
    width, height, colours = png_size_and_colours(shot)
    assert (width, height) == (1280, 1600)
    assert colours > 20, "the screenshot is blank"


def test_the_emergency_report_shows_each_rung(tmp_path):
    results = {
        "wp1": {"top_cause": "fpm_down", "healed_by": "restart_fpm", "culprits": [], "journal": "/var/lib/wp502/runs/A",
                "rungs": [{"rung": "restart_fpm", "healed": True, "seconds": 1.9, "origin": [200, 200], "note": ""}]},
        "wp2": {"top_cause": "crashing_worker", "healed_by": "plugins", "culprits": ["wp502-fault-segfault"],
                "rollback": "ansible-playbook playbooks/rollback-502.yml -l wp2 -e wp502_run_id=B",
                "rungs": [{"rung": "restart_fpm", "healed": False, "seconds": 8.2, "origin": [502, 502]},
                          {"rung": "plugins", "healed": True, "seconds": 11.4, "origin": [200, 200],
                           "note": "culprit: wp502-fault-segfault"}]},
        "wp3": {"top_cause": "oom", "stopped": "", "rungs": [], "next_step": "add memory"},
    }
    page = tmp_path / "emergency.html"
    page.write_text(rep.wp502_emergency_html(results, "wp502 emergency run", "2026-11-24T02:00:00Z"))
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    parsed = DOM()
    parsed.feed(dom)
    assert parsed.rows == ["wp1", "wp2", "wp3"] and {"outcomes", "rungs", "results"} <= parsed.ids
    assert "healed by plugins (culprit: wp502-fault-segfault)" in dom and "NOT healed; next: add memory" in dom
    assert dom.count('data-rung="restart_fpm"') == 2 and "19.6 s" in dom
    shot = screenshot(page, "emergency.png", tmp_path / "profile", "1280,900")
    assert png_size_and_colours(shot)[2] > 20


def site(sid, cause="healthy", failing=False, status=200, **http):
    top = {"cause": cause, "confidence": 0.9, "evidence": [f"{sid}: why {cause}"], "rungs": [] if cause == "healthy" else ["plugins"]}
    return {"id": sid, "names": [sid, "www." + sid], "docroot": "/var/www/" + sid, "server": "nginx", "pools": [sid],
            "wordpress": {"path": "/var/www/" + sid}, "verdict": [top], "top_cause": cause, "failing": failing,
            "http": dict({"origin": {"/": {"status": status}, "/wp-login.php": {"status": status}}, "origin_healthy": not failing},
                         **http)}


# Measured in the browser once the page is laid out, written into the DOM for --dump-dom to carry out.
MEASURE = """<script>window.addEventListener('load', () => {
  const out = {};
  for (const body of document.querySelectorAll('#verdicts tbody.host, #outcomes tbody.host')) {
    const head = body.querySelector('th[scope=rowgroup]');
    const rows = [...body.querySelectorAll('tr')];
    out[body.dataset.host] = {rows: rows.length, head: Math.round(head.getBoundingClientRect().height),
      span: Math.round(rows.reduce((n, r) => n + r.getBoundingClientRect().height, 0)),
      tallest: Math.round(Math.max(...rows.map(r => r.getBoundingClientRect().height)))};
  }
  out.overflow = document.documentElement.scrollWidth > window.innerWidth;
  document.body.setAttribute('data-measure', JSON.stringify(out));
});</script>"""


def measured(dom: str) -> dict:
    import html as _html
    import json

    return json.loads(_html.unescape(dom.split('data-measure="', 1)[1].split('"', 1)[0]))


def test_fifteen_sites_on_a_host_read_as_one_group_in_chromium(tmp_path):
    agency = [site(f"shop{i:02d}.example") for i in range(15)]
    agency[4] = site("shop04.example", "bom", failing=True, status=500)
    agency[12] = site("shop12.example", "slow_plugin", failing=True, status=502,
                      public={"/": {"status": 522}}, cdn="cloudflare", ray_id="8f1c2a3b4d5e6f70-AMS")
    three = [site("sitea.test"), site("siteb.test", "mysql_down", failing=True, status=500), site("sitec.test")]

    def host(sites):
        ev = evidence("healthy", 0.9)
        worst = next((s for s in sites if s["failing"]), sites[0])
        ev.update(sites=sites, verdict=[dict(worst["verdict"][0], site=worst["id"])], top_cause=worst["top_cause"])
        return {"wp502_evidence_result": ev}

    hostvars = {"agency": host(agency), "web2": host(three), "old": HOSTVARS["web1"], "down": {}}
    summary = rep.wp502_fleet_summary(hostvars, list(hostvars), unreachable=["down"])
    page = tmp_path / "sites.html"
    page.write_text(rep.wp502_report_html(summary, "wp502 fleet audit", "2026-12-01T00:00:00Z").replace("</body>", MEASURE + "</body>"))
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,1600", "--dump-dom",
                          page.as_uri()], capture_output=True, text=True, timeout=120, check=True).stdout
    parsed = DOM()
    parsed.feed(dom)
    assert parsed.rows == ["agency"] * 15 + ["web2"] * 3 + ["old", "down"]
    m = measured(dom)
    # The host cell spans exactly its own rows, each row stays one line or two (no cell explodes), and
    # the table fits the window.
    assert m["agency"]["rows"] == 15 and abs(m["agency"]["head"] - m["agency"]["span"]) <= 2
    assert m["web2"]["rows"] == 3 and abs(m["web2"]["head"] - m["web2"]["span"]) <= 2
    assert m["agency"]["tallest"] < 80 and m["overflow"] is False
    assert "audited, 2 of 15 sites failing" in dom and "Ray ID 8f1c2a3b4d5e6f70-AMS" in dom
    assert dom.count('class="failing"') == 2 + 1 + 1 and "site-causes" in parsed.ids  # agency, web2, the old host's one site
    shot = screenshot(page, "report-sites.png", tmp_path / "profile", "1280,1600")
    assert png_size_and_colours(shot)[2] > 20


def test_the_emergency_report_has_a_row_per_site_in_chromium(tmp_path):
    def em_site(sid, before, after, healed_by=None, culprits=(), **extra):
        return dict({"site": sid, "before": before, "after": after, "answering_before": before == "200",
                     "answering_after": after == "200", "top_cause": "slow_plugin", "healed_by": healed_by,
                     "culprits": list(culprits), "state": "?"}, **extra)
    results = {
        "wp1": {"top_cause": "slow_plugin", "journal": "/var/lib/wp502/runs/A",
                "rungs": [{"rung": "restart_db", "healed": False, "seconds": 2.0, "sites": ["sitec.test"]},
                          {"rung": "plugins", "healed": True, "seconds": 9.1, "sites": ["siteb.test"]}],
                "sites": [em_site("sitea.test", "200", "200"), em_site("siteb.test", "502", "200", "plugins", ["wp502-fault-slow"]),
                          em_site("sitec.test", "500", "200", "restart_db")]},
        "wp2": {"top_cause": "slow_plugin", "rungs": [{"rung": "plugins", "healed": False, "seconds": 5.0}],
                "sites": [em_site("sitea.test", "200", "502"), em_site("siteb.test", "502", "502")]},
        "wp3": {"top_cause": "fpm_down", "healed_by": "restart_fpm", "rungs": []},
    }
    page = tmp_path / "emergency-sites.html"
    page.write_text(rep.wp502_emergency_html(results, "wp502 emergency run", "2026-12-01T00:00:00Z").replace(
        "</body>", MEASURE + "</body>"))
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,900", "--dump-dom",
                          page.as_uri()], capture_output=True, text=True, timeout=120, check=True).stdout
    parsed = DOM()
    parsed.feed(dom)
    assert parsed.rows == ["wp1"] * 3 + ["wp2"] * 2 + ["wp3"]
    assert "healed 2 of 2 failing sites: siteb.test by plugins (culprit wp502-fault-slow), sitec.test by restart_db" in dom
    assert 'data-site="sitea.test" data-state="broke"' in dom and "not healed: siteb.test still answers 502 after plugins" in dom
    m = measured(dom)
    assert abs(m["wp1"]["head"] - m["wp1"]["span"]) <= 2 and m["overflow"] is False
    shot = screenshot(page, "emergency-sites.png", tmp_path / "profile", "1280,900")
    assert png_size_and_colours(shot)[2] > 20


# Types into the search box once the page is loaded, and writes which host bodies stay visible.
SEARCH = """<script>window.addEventListener('load', () => {
  const box = document.getElementById('search'), out = {};
  const visible = () => [...document.querySelectorAll('#verdicts tbody.host')]
    .filter(b => b.getClientRects().length > 0).map(b => b.dataset.host);
  out.all = visible();
  for (const q of %s) {
    box.value = q; box.dispatchEvent(new Event('input'));
    out[q] = {hosts: visible(), shown: document.getElementById('shown').textContent};
  }
  document.querySelector('#groups li[data-kind="cause"]').click();
  out.clicked = {value: box.value, hosts: visible()};
  box.value = ''; box.dispatchEvent(new Event('input'));
  out.cleared = visible();
  document.body.setAttribute('data-measure', JSON.stringify(out));
});</script>"""


def test_the_search_box_filters_the_host_rows_in_chromium(tmp_path):
    hostvars = dict(HOSTVARS, web5={"wp502_evidence_result": evidence("slow_plugin", 0.7, "heavy-analytics")})
    hostvars["web5"]["wp502_evidence_result"]["logs"]["suspects"] = [{"type": "plugin", "slug": "only-in-the-logs"}]
    summary = rep.wp502_fleet_summary(hostvars, list(hostvars), unreachable=["web<4>"])
    queries = ["heavy-analytics", "HEAVY analytics web5", "only-in-the-logs", "unreachable", "no-such-host"]
    page = tmp_path / "search.html"
    page.write_text(rep.wp502_report_html(summary, "wp502 fleet audit", "2026-12-02T00:00:00Z").replace(
        "</body>", SEARCH % json.dumps(queries) + "</body>"))
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    m = measured(dom)
    assert m["all"] == ["web1", "web2", "web5", "web3", "web<4>"]  # unhealthy first
    assert m["heavy-analytics"] == {"hosts": ["web2", "web5"], "shown": "2 of 5 hosts"}
    assert m["HEAVY analytics web5"]["hosts"] == ["web5"]  # every word, any case
    assert m["only-in-the-logs"]["hosts"] == ["web5"]  # a suspect the row does not show is found too
    assert m["unreachable"]["hosts"] == ["web<4>"] and m["no-such-host"]["hosts"] == []
    assert m["clicked"] == {"value": "slow_plugin", "hosts": ["web2", "web5"]}  # a group filters the table to its hosts
    assert m["cleared"] == m["all"]


OVERVIEW = """<script>window.addEventListener('load', () => {
  const top = id => Math.round(document.getElementById(id).getBoundingClientRect().top);
  document.body.setAttribute('data-measure', JSON.stringify({overview: top('overview'), groups: top('groups'),
    verdicts: top('verdicts'), height: window.innerHeight, loaded: Math.round(performance.now()),
    rows: document.querySelectorAll('#verdicts tbody.host').length,
    first: document.querySelector('#verdicts tbody.host').dataset.host}));
});</script>"""


def test_a_thousand_hosts_open_on_the_overview_in_chromium(tmp_path):
    lab = [HOSTVARS["web1"], HOSTVARS["web2"], HOSTVARS["web3"]]  # three hosts' evidence, repeated
    hostvars = {f"web{i:04d}": lab[i % 3] for i in range(1000)}
    summary = rep.wp502_fleet_summary(hostvars, list(hostvars))
    biggest = summary["groups"][0]
    assert biggest["key"] == {"kind": "signature", "value": "connect_unavailable"} and len(biggest["hosts"]) == 1000
    assert {"kind": "culprit", "value": "heavy-analytics"} in [g["key"] for g in summary["groups"]]
    page = tmp_path / "fleet.html"
    page.write_text(rep.wp502_report_html(summary, "wp502 fleet audit", "2026-12-02T00:00:00Z").replace(
        "</body>", OVERVIEW + "</body>"))
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,1000", "--dump-dom",
                          page.as_uri()], capture_output=True, text=True, timeout=180, check=True).stdout
    m = measured(dom)
    assert m["rows"] == 1000 and m["first"] == "web0000"  # fpm_down, unhealthy
    # The overview opens the page and its groups are in the first screen, the host table after them.
    assert m["overview"] < m["groups"] < m["verdicts"] and m["groups"] < m["height"], m
    assert "1000 hosts</b> share the signature" in dom and "334 hosts</b> share the cause" in dom
    shot = screenshot(page, "report-1000.png", tmp_path / "profile", "1280,1000", timeout=180)
    assert png_size_and_colours(shot)[2] > 20


# Once loaded: where the overview is, how many host rows the DOM holds, what a search and a sort by host
# leave, and where the first host's link points.
FLEET = """<script>window.addEventListener('load', () => {
  const top = id => Math.round(document.getElementById(id).getBoundingClientRect().top);
  const bodies = () => [...document.querySelectorAll('#verdicts tbody.host')];
  const visible = () => bodies().filter(b => b.getClientRects().length > 0).map(b => b.dataset.host);
  const out = {overview: top('overview'), groups: top('groups'), verdicts: top('verdicts'), height: window.innerHeight,
    bodies: bodies().length, rows: document.querySelectorAll('#verdicts tbody.host tr').length,
    first: bodies()[0].dataset.host, link: bodies()[0].querySelector('th a').getAttribute('href')};
  const box = document.getElementById('search');
  box.value = 'heavy-analytics'; box.dispatchEvent(new Event('input'));
  out.search = {hosts: visible().length, shown: document.getElementById('shown').textContent};
  box.value = ''; box.dispatchEvent(new Event('input'));
  const host = document.querySelector('#verdicts thead th');
  host.click(); out.ascending = bodies().slice(0, 2).map(b => b.dataset.host);
  host.click(); out.descending = bodies().slice(0, 2).map(b => b.dataset.host);
  out.sorted = host.getAttribute('aria-sort');
  document.body.setAttribute('data-measure', JSON.stringify(out));
});</script>"""


def write_report(directory: Path, n: int) -> tuple[Path, dict]:
    """A fleet of n hosts (three lab hosts' evidence, repeated) written as the report role writes it:
    report.html and each host's page under hosts/."""
    lab = [HOSTVARS["web1"], HOSTVARS["web2"], HOSTVARS["web3"]]
    hostvars = {f"web{i:04d}": lab[i % 3] for i in range(n)}
    summary = rep.wp502_fleet_summary(hostvars, list(hostvars))
    files = dict(rep.wp502_host_pages(summary, "wp502 fleet audit", "2026-12-02T00:00:00Z"),
                 **{"report.html": rep.wp502_report_html(summary, "wp502 fleet audit", "2026-12-02T00:00:00Z")})
    for name, text in files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(text)
    return directory / "report.html", files


def test_five_thousand_hosts_open_on_the_overview_and_link_to_their_pages_in_chromium(tmp_path):
    sizes = {}
    for n in (1000, 5000):
        (tmp_path / str(n)).mkdir()
        page, files = write_report(tmp_path / str(n), n)
        host_pages = [len(v.encode()) for k, v in files.items() if k.startswith("hosts/")]
        sizes[n] = {"report.html": page.stat().st_size, "host pages": len(host_pages), "largest host page": max(host_pages)}
    lines = [f"{n} hosts: report.html {v['report.html'] / 1e6:.2f} MB ({v['report.html']} bytes), {v['host pages']} host pages,"
             f" the largest {v['largest host page']} bytes" for n, v in sizes.items()]
    print("\n".join(lines))  # the page sizes, in the test output (pytest -rP or -s)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "report-sizes.txt").write_text("\n".join(lines) + "\n")
    assert sizes[1000]["host pages"] == 1000 and sizes[5000]["host pages"] == 5000

    page = tmp_path / "5000" / "report.html"
    measuring = tmp_path / "5000" / "measure.html"  # beside report.html, so its links resolve the same way
    measuring.write_text(page.read_text().replace("</body>", FLEET + "</body>"))
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,1000", "--dump-dom",
                          measuring.as_uri()], capture_output=True, text=True, timeout=300, check=True).stdout
    m = measured(dom)
    assert m["bodies"] == 5000 and m["rows"] == 5000 and m["first"] == "web0000"
    assert m["overview"] < m["groups"] < m["verdicts"] and m["groups"] < m["height"], m
    assert m["search"] == {"hosts": 1667, "shown": "1667 of 5000 hosts"}  # web0001, web0004, ...: slow_plugin
    assert m["ascending"] == ["web0000", "web0001"] and m["descending"] == ["web4999", "web4998"]
    assert m["sorted"] == "descending"
    assert m["link"] == "hosts/web0000.html"

    host_page = page.parent / m["link"]
    host_dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", host_page.as_uri()],
                              capture_output=True, text=True, timeout=120, check=True).stdout
    parsed = DOM()
    parsed.feed(host_dom)
    assert {"verdict", "sites", "per-hour", "memory", "host"} <= parsed.ids and parsed.svgs == 2
    assert 'data-host="web0000"' in host_dom and "why fpm_down" in host_dom and 'href="../report.html"' in host_dom

    for shot, target, size in (("report-5000.png", page, "1280,1000"), ("host-page.png", host_page, "1280,900")):
        assert png_size_and_colours(screenshot(target, shot, tmp_path / "profile", size, timeout=300))[2] > 20, shot
