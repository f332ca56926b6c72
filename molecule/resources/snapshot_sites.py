#!/usr/bin/python3
"""wp502-mol-snapshot DIR: what the emergency must leave alone on a multi-site lab target, per site.

For every site of `wp502-lab-site list`: its active_plugins option bytes (hex, None while the database
is down), its plugin directory (every entry: type, mode, size, sha256), the sha256 of its pool file,
vhost file and wp-config.php, and its database: the inode of each table file in the MariaDB data
directory (a restore makes new files) and the row counts of tables WordPress does not write on a
page view. Written to DIR/state.json; standard library only.
"""

import hashlib
import json
import os
import subprocess
import sys

DATADIR = "/var/lib/mysql"
STABLE_TABLES = ("wp_posts", "wp_users", "wp_terms", "wp_comments")


def sha256(path):
    try:
        with open(path, "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()
    except OSError as exc:
        return f"unreadable: {exc.strerror}"


def tree(top):
    out = {}
    for root, dirs, files in os.walk(top):
        dirs.sort()
        for name in sorted(dirs) + sorted(files):
            path = os.path.join(root, name)
            st = os.lstat(path)
            kind = "l" if os.path.islink(path) else "d" if os.path.isdir(path) else "f"
            entry = {"type": kind, "mode": oct(st.st_mode & 0o7777)}
            if kind == "f":
                entry.update(size=st.st_size, sha256=sha256(path))
            elif kind == "l":
                entry["target"] = os.readlink(path)
            out[os.path.relpath(path, top)] = entry
    return out


def sql(db, query):
    proc = subprocess.run(["mariadb", "--batch", "--skip-column-names", f"--database={db}", "--execute", query],
                          capture_output=True, text=True, timeout=30, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def site_state(site):
    db = site["db"]
    dbdir = os.path.join(DATADIR, db)
    files = {}
    if os.path.isdir(dbdir):
        for name in sorted(os.listdir(dbdir)):
            files[name] = os.stat(os.path.join(dbdir, name)).st_ino
    rows = {}
    for table in STABLE_TABLES:
        rows[table] = sql(db, f"SELECT COUNT(*) FROM {table}")  # noqa: S608 - names from STABLE_TABLES above
    return {
        "active_plugins": sql(db, "SELECT HEX(option_value) FROM wp_options WHERE option_name = 'active_plugins'"),
        "plugins": tree(os.path.join(site["path"], "wp-content", "plugins")),
        "pool": sha256(site["pool_file"]),
        "vhost": sha256(site["vhost_file"]),
        "wp_config": sha256(os.path.join(site["path"], "wp-config.php")),
        "db_files": files,
        "db_rows": rows,
    }


def main():
    out_dir = sys.argv[1]
    sites = json.loads(subprocess.run(["wp502-lab-site", "list"], capture_output=True, text=True, check=True).stdout)
    state = {s["name"]: site_state(s) for s in sites}
    os.makedirs(out_dir, mode=0o700, exist_ok=True)
    with open(os.path.join(out_dir, "state.json"), "w", encoding="utf-8") as fh:
        json.dump({"sites": sites, "state": state}, fh, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
