# -*- coding: utf-8 -*-
# Copyright: wp502 contributors
# MIT License (see LICENSE)
"""The site map of a host: which WordPress sites it serves, and what serves each one (pure; stdlib only).

A site is one document root served by one front-end. The vhosts (nginx server blocks, Apache
VirtualHosts) that share a docroot are one site, whatever ports and names they carry (the :80 and
:443 blocks of ``shop.example.com`` and its ``www.`` alias). :func:`build_sites` turns the active
front-end's servers, the FPM pools and the sites the operator named into that map; its only contact
with the file system is the ``realpath`` it is given (docroots reached through symlinks are one).
"""

from __future__ import absolute_import, division, print_function

import os
import re

from ansible.module_utils.wp502_fpm import listen_address
from ansible.module_utils.wp502_verdict import norm_addr

__metaclass__ = type

# Server names that name no site: nginx's catch-all, an empty name, and the loopback.
NO_NAME = ("", "_", "localhost", "localhost.localdomain", "default")


def usable_name(name):
    """A server name that can be a site's id and Host header: not a catch-all, a wildcard or a regex."""
    name = (name or "").strip().strip('"').strip("'")
    return bool(name) and name.lower() not in NO_NAME and "*" not in name and not name.startswith("~") \
        and not name.startswith(".") and not re.search(r"[\s/$^()|\\\[\]{}]", name)


def site_id(names, docroot):
    """The id of a site: its first usable server name, else its docroot."""
    for name in names or []:
        if usable_name(name):
            return re.sub(r":\d+$", "", name.strip().strip('"').strip("'").lower())  # ServerName www.x.com:443
    return (docroot or "").rstrip("/") or "/"


def origin_endpoint(listens):
    """Port and scheme to probe the origin on, from a server's listen directives: the first plain-HTTP
    port, else the first TLS one (over https), else 80. ``*:80`` (Apache) and ``[::]:8080`` work too."""
    plain, tls = [], []
    for listen in listens:
        words = str(listen).split()
        m = re.search(r"(?:^|:)(\d+)$", words[0]) if words else None
        if not m:
            continue
        (tls if "ssl" in words[1:] or "quic" in words[1:] or m.group(1) == "443" else plain).append(int(m.group(1)))
    if plain:
        return plain[0], "http"
    if tls:
        return tls[0], "https"
    return 80, "http"


def _listen_key(listen, kind):
    """The address a listen directive binds, for default-server bookkeeping: ``*:80``, ``127.0.0.1:8081``."""
    words = str(listen).split()
    if not words:
        return None
    addr = words[0]
    if kind == "apache":
        addr = addr.replace("_default_", "*")
    if addr.isdigit():
        return "*:" + addr
    m = re.match(r"^(.*):(\d+)$", addr)
    if m:
        host = m.group(1)
        return ("*" if host in ("", "*", "0.0.0.0") else host) + ":" + m.group(2)  # noqa: S104 - a bind address
    return addr + (":80" if kind == "apache" else "")


def _nginx_default(listen):
    return any(w in ("default_server", "default") for w in str(listen).split()[1:])


def addr_key(addr):
    """One comparable form of a pool address or an upstream: ``(family, address)``; None when unreadable."""
    norm = norm_addr(addr)
    if not norm:
        return None
    raw = norm[5:] if norm.startswith("unix:") else norm
    try:
        family, address = listen_address(raw)
    except ValueError:
        return None
    return (int(family), address)


def probe_host(site_name_id, names, default_server):
    """The Host header a site's origin is asked with: its id, or a name its wildcard matches, or localhost."""
    if usable_name(site_name_id):
        return site_name_id
    for name in names or []:
        if name.startswith("*.") and usable_name(name[2:]):
            return "www." + name[2:]
        if name.startswith(".") and usable_name(name[1:]):
            return name[1:]
    return "localhost"


def _serving(srv):
    """The listens a vhost serves on: all, or only its TLS ones when it sends plain HTTP to https."""
    listens = srv.get("listen") or []
    if srv.get("redirect") == "http":
        return [x for x in listens if origin_endpoint([x])[1] == "https"]
    return listens


def _docroot_key(path, realpath):
    path = (path or "").rstrip("/") or "/"
    try:
        return realpath(path)
    except (OSError, ValueError):
        return path


def build_sites(servers, pools, given=(), active_kind=None, realpath=os.path.realpath):
    """The site map: ``[site]`` with the shape of ``evidence["sites"]`` (without wordpress, http, verdict).

    ``servers``: the front-end servers as ``wp502_collect`` lists them (``kind, file, names, root, listen,
    default_server, redirect, error_log, access_log, upstreams``); only those of ``active_kind`` count
    (all when it is None). ``pools``: FPM pools (``name, listen, service``). ``given``: the operator's
    sites ``{path, host, url}``, matched to a discovered site by docroot (realpath) or by one of its
    names; one that matches nothing becomes a site of its own. Given sites come first, in their order.
    """
    servers = [s for s in servers or [] if active_kind is None or s.get("kind") == active_kind]
    # Default servers: nginx's default_server flag, else (nginx and Apache) the first vhost of an address.
    explicit, first = {}, {}
    for n, srv in enumerate(servers):
        for listen in srv.get("listen") or []:
            key = _listen_key(listen, srv.get("kind"))
            if key is None:
                continue
            first.setdefault(key, n)
            if srv.get("kind") == "nginx" and (_nginx_default(listen) or srv.get("default_server")):
                explicit.setdefault(key, n)
    defaults = set(explicit.get(key, n) for key, n in first.items())
    pool_by_addr = {}
    for pool in pools or []:
        key = addr_key(pool.get("listen"))
        if key is not None:
            pool_by_addr.setdefault(key, []).append(pool)

    by_root, order = {}, []
    for n, srv in enumerate(servers):
        if not srv.get("root"):
            continue  # a block without a docroot (a redirect, a proxy) serves no WordPress
        key = _docroot_key(srv["root"], realpath)
        if key not in by_root:
            by_root[key] = {"docroot": srv["root"].rstrip("/") or "/", "servers": [], "default": False}
            order.append(key)
        by_root[key]["servers"].append(srv)
        by_root[key]["default"] = by_root[key]["default"] or n in defaults

    # A block without a docroot (the :80 half that redirects to https, a proxy) joins the site that carries
    # one of its names, as a vhost of it; it never decides where the origin is asked.
    named = {}
    for key in order:
        for srv in by_root[key]["servers"]:
            for name in srv.get("names") or []:
                if usable_name(name):
                    named.setdefault(site_id([name], None), key)
    for n, srv in enumerate(servers):
        if srv.get("root"):
            continue
        key = next((named[site_id([x], None)] for x in srv.get("names") or [] if usable_name(x)
                    and site_id([x], None) in named), None)
        if key is not None:
            by_root[key]["servers"].append(dict(srv, redirect=True, _rootless=True, _n=n))
            by_root[key]["default"] = by_root[key]["default"] or n in defaults
    position = dict((id(srv), n) for n, srv in enumerate(servers))
    for entry in by_root.values():  # a site's vhosts in the order the front-end reads them
        entry["servers"].sort(key=lambda srv: srv["_n"] if "_n" in srv else position[id(srv)])

    sites = []
    for key in order:
        entry = by_root[key]
        sites.append(_site(entry["docroot"], entry["servers"], entry["default"], pool_by_addr, active_kind))
        sites[-1]["_key"] = key

    picked = []
    for g in given or []:
        path = g.get("path")
        gkey = _docroot_key(path, realpath) if path else None
        host = (g.get("host") or "").lower() or None
        match = next((s for s in sites if gkey and s["_key"] == gkey), None) or \
            next((s for s in sites if host and host in [x.lower() for x in s["names"]]), None)
        if match is None:
            match = _site(path, [], False, pool_by_addr, active_kind)
            match["names"] = [host] if host else []
            match["id"] = site_id(match["names"], path)
            match["probe_host"] = host or "localhost"
            match["_key"] = gkey
            match["given"] = True
            sites.append(match)
        if host:
            match["probe_host"] = host
            if host not in [x.lower() for x in match["names"]]:
                match["names"].append(host)
        if g.get("url"):
            match["url"] = g["url"]
        match["given"] = True
        if all(match is not p for p in picked):
            picked.append(match)
    ordered = picked + [s for s in sites if all(s is not p for p in picked)]
    seen = set()
    for site in ordered:
        site.pop("_key", None)
        site.setdefault("given", False)
        base = site["id"]
        if base in seen:  # two docroots under one first name: the next free name, else the docroot
            alt = [site_id([x], None) for x in site["names"] if usable_name(x)] + [site["docroot"] or base]
            site["id"] = next((a for a in alt if a not in seen), None) or base
            n = 2
            while site["id"] in seen:
                site["id"] = "%s#%d" % (base, n)
                n += 1
        seen.add(site["id"])
    return ordered


def _site(docroot, servers, default, pool_by_addr, active_kind):
    names, listens, upstreams, vhosts = [], [], [], []
    for srv in servers:
        for name in srv.get("names") or []:
            if name not in names:
                names.append(name)
        for listen in srv.get("listen") or []:
            if listen not in listens:
                listens.append(listen)
        for up in srv.get("upstreams") or []:
            norm = norm_addr(up)
            if norm and norm not in upstreams:
                upstreams.append(norm)
        vhosts.append({"file": srv.get("file"), "names": list(srv.get("names") or []), "listen": list(srv.get("listen") or []),
                       "default_server": bool(srv.get("default_server")),
                       "redirect": srv.get("redirect") if srv.get("redirect") == "http" else bool(srv.get("redirect")),
                       "root": not srv.get("_rootless")})
    sid = site_id(names, docroot)
    # The origin is asked where a vhost that carries the site's id serves it (not where it only redirects).
    serving = [srv for srv in servers if srv.get("redirect") is not True]
    own = [srv for srv in serving if sid in [site_id([x], None) for x in srv.get("names") or []]]
    port, scheme = origin_endpoint([listen for srv in own or serving for listen in _serving(srv)] or listens)
    pools, services = [], []
    for up in upstreams:
        for pool in pool_by_addr.get(addr_key(up), []):
            if pool.get("name") not in pools:
                pools.append(pool.get("name"))
            if pool.get("service") and pool["service"] not in services:
                services.append(pool["service"])

    def first_log(key):
        for srv in [s for s in servers if not s.get("redirect")] + servers:
            if srv.get(key):
                return srv[key]
        return None

    return {"id": sid, "names": names, "docroot": docroot, "server": active_kind or (servers[0].get("kind") if servers else None),
            "vhosts": vhosts, "listen": listens, "port": port, "scheme": scheme, "default_server": bool(default),
            "probe_host": probe_host(sid, names, default), "error_log": first_log("error_log"),
            "access_log": first_log("access_log"), "upstreams": upstreams, "pools": pools,
            "fpm_services": sorted(services), "url": None}


_PHP_STR = r"""(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")"""
_PHP_BASE = re.compile(r"^(__DIR__|dirname\(\s*__FILE__\s*\)|dirname\(\s*__DIR__\s*\)|ABSPATH)\s*\.\s*" + _PHP_STR + r"$")


def resolve_php_path(value, config_dir, abspath):
    """A path constant of wp-config.php (WP_CONTENT_DIR): a plain string, or the usual expressions
    ``__DIR__ . '/content'``, ``dirname(__FILE__) . '/x'``, ``dirname(__DIR__) . '/x'``, ``ABSPATH . 'x'``.
    None when it is only known when PHP runs (``getenv()``, other constants)."""
    if isinstance(value, str):
        return os.path.normpath(value if value.startswith("/") else os.path.join(config_dir, value))
    expr = value.get("expression") if isinstance(value, dict) else None
    m = _PHP_BASE.match((expr or "").strip())
    if not m:
        return None
    tail = m.group(2) if m.group(2) is not None else m.group(3)
    base = {"__DIR__": config_dir, "ABSPATH": abspath.rstrip("/") + "/"}.get(m.group(1))
    if base is None:
        base = os.path.dirname(config_dir) if "__DIR__" in m.group(1) else config_dir
    return os.path.normpath(base + tail if tail.startswith("/") or base.endswith("/") else base + "/" + tail)


_DEFINE = re.compile(r"""\bdefine\s*\(\s*['"](MULTISITE|WP_ALLOW_MULTISITE|SUBDOMAIN_INSTALL)['"]\s*,\s*([^)]*?)\s*\)""")


def wp_multisite(text):
    """Whether a wp-config.php makes a network: ``{multisite, allow_multisite, subdomain_install}``
    (MULTISITE true is a network; WP_ALLOW_MULTISITE alone only offers the Network Setup screen)."""
    from ansible.module_utils.wp502_wordpress import strip_php_comments

    found = {}
    for m in _DEFINE.finditer(strip_php_comments(text or "")):
        raw = m.group(2).strip().strip("'\"").lower()
        found.setdefault(m.group(1), raw in ("true", "1", "yes"))
    return {"multisite": found.get("MULTISITE", False), "allow_multisite": found.get("WP_ALLOW_MULTISITE", False),
            "subdomain_install": found.get("SUBDOMAIN_INSTALL")}
