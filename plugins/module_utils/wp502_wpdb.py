# -*- coding: utf-8 -*-
# Copyright: wp502 contributors
# MIT License (see LICENSE)
"""WordPress's plugin lists in its database, read and written byte for byte (standard library only).

The emergency ladder never runs WordPress to change its plugins (a broken plugin would run too):
it talks to the database with the host's ``mysql``/``mariadb`` client and the credentials of
wp-config.php, and moves values as hex (``HEX()``/``UNHEX()``) so that no byte is reinterpreted by
the client's escaping or character set on the way.

- :func:`php_array_items` / :func:`php_array_dump` read and write the PHP-serialized arrays that
  hold the plugin lists (``active_plugins`` is a list of files, ``active_sitewide_plugins`` maps
  files to activation times), keeping every other entry's bytes as they were.
- :class:`WordPressDB` gets and sets those values, given a ``run(argv, env=None, timeout=None)``.
"""

from __future__ import absolute_import, division, print_function

import binascii
import os
import re

from ansible.module_utils.wp502_host import CommandTimeoutError
from ansible.module_utils.wp502_wordpress import split_db_host

__metaclass__ = type

# Where each plugin list lives: table (after the prefix), key column, value column, extra condition.
LISTS = {
    "active_plugins": ("options", "option_name", "option_value", ""),
    "active_sitewide_plugins": ("sitemeta", "meta_key", "meta_value", " AND site_id = 1"),
}


def _token(raw, i):
    """One scalar at ``raw[i:]``: (value, end). Strings are bytes; lengths are byte counts."""
    tag = raw[i:i + 1]
    if tag == b"s":
        colon = raw.index(b":", i + 2)
        length = int(raw[i + 2:colon])
        start = colon + 2
        if raw[colon + 1:colon + 2] != b'"' or raw[start + length:start + length + 2] != b'";':
            raise ValueError("string at byte %d does not end where its length says" % i)
        return raw[start:start + length], start + length + 2
    if tag in (b"i", b"d"):
        end = raw.index(b";", i)
        text = raw[i + 2:end].decode("ascii")
        return (int(text) if tag == b"i" else float(text)), end + 1
    if tag == b"b":
        end = raw.index(b";", i)
        return raw[i + 2:end] == b"1", end + 1
    if tag == b"N":
        return None, i + 2
    raise ValueError("unexpected %r at byte %d (nested values are not plugin lists)" % (tag, i))


def php_array_items(raw):
    """The entries of a flat PHP-serialized array as ``[(key, value, raw_entry_bytes)]``.

    Raises ValueError for anything that is not a flat array, or whose count does not match.
    """
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    m = re.match(br"a:(\d+):\{", raw)
    if not m:
        raise ValueError("not a serialized PHP array: %r" % raw[:40])
    i = m.end()
    items = []
    while raw[i:i + 1] != b"}":
        if i >= len(raw):
            raise ValueError("serialized array is cut short")
        start = i
        key, i = _token(raw, i)
        value, i = _token(raw, i)
        items.append((key, value, raw[start:i]))
    if len(items) != int(m.group(1)):
        raise ValueError("serialized array says %s entries and holds %d" % (m.group(1).decode(), len(items)))
    if raw[i + 1:].strip():
        raise ValueError("bytes after the serialized array")
    return items


def php_array_dump(items, relist=False):
    """Serialize entries from :func:`php_array_items` again. With ``relist`` the keys become 0..n-1 (a
    PHP list, as WordPress keeps ``active_plugins``); otherwise each entry keeps its own bytes."""
    parts = []
    for n, (_key, value, raw_entry) in enumerate(items):
        if relist:
            parts.append(b"i:%d;s:%d:\"%s\";" % (n, len(value), value))
        else:
            parts.append(raw_entry)
    return b"a:%d:{%s}" % (len(items), b"".join(parts))


def plugin_files(name, raw):
    """The plugin files a list names: the values of ``active_plugins``, the keys of the sitewide list."""
    items = php_array_items(raw)
    picked = [key if name == "active_sitewide_plugins" else value for key, value, _raw_entry in items]
    return [p.decode("utf-8", "replace") for p in picked if isinstance(p, bytes)]


def without(name, raw, files):
    """The list ``raw`` without ``files``; everything else byte for byte (``active_plugins`` is relisted
    0..n-1 only when something was taken out, as WordPress's own deactivation leaves a list)."""
    drop = set(f.encode("utf-8") for f in files)
    items = php_array_items(raw)
    at = 0 if name == "active_sitewide_plugins" else 1
    kept = [it for it in items if it[at] not in drop]
    if len(kept) == len(items):
        return raw
    return php_array_dump(kept, relist=name == "active_plugins")


def mysql_argv(client, cfg):
    """The client's argv for the database of a parsed wp-config.php (password goes in MYSQL_PWD)."""
    if not all(isinstance(cfg.get(k), str) for k in ("db_name", "db_user")):
        raise ValueError("DB_NAME/DB_USER are not plain strings in wp-config.php")
    where = split_db_host(cfg.get("db_host"))
    argv = [client, "--batch", "--skip-column-names", "--connect-timeout=5", "-u", cfg["db_user"]]
    if where["socket"]:
        argv.append("--socket=" + where["socket"])
    else:
        argv += ["-h", where["host"]]
        if where["port"]:
            argv += ["-P", str(where["port"])]
    argv.append(cfg["db_name"])
    return argv


class DBError(RuntimeError):
    """The database did not answer, or refused."""


class WordPressDB:
    """A site's plugin lists. ``run(argv, env=None, timeout=None) -> (rc, out, err)``."""

    # Each statement's deadline (s): the client's own --connect-timeout is 5 s; a locked table or a
    # database that stopped answering must not hold the emergency run.
    timeout = 30

    def __init__(self, run, client, cfg, password):
        prefix = cfg.get("table_prefix") if isinstance(cfg.get("table_prefix"), str) else "wp_"
        if not re.match(r"^\w+$", prefix):
            raise ValueError("unusual table prefix %r: not queried" % (prefix,))
        self.run = run
        self.prefix = prefix
        self.argv = mysql_argv(client, cfg)
        self.password = password if isinstance(password, str) else None

    def _sql(self, sql):
        env = {"MYSQL_PWD": self.password} if self.password is not None else None
        try:
            rc, out, err = self.run([*self.argv, "-e", sql], env=env, timeout=self.timeout)
        except CommandTimeoutError:
            raise DBError("%s did not answer within %d s (killed) to: %s" % (
                os.path.basename(self.argv[0]), self.timeout, sql if len(sql) <= 80 else sql[:80] + "...")) from None
        if rc != 0:
            text = (err or out or "").strip()[-300:]
            if self.password:
                text = text.replace(self.password, "********")
            raise DBError(text or "the mysql client exited %d" % rc)
        return out

    def _where(self, name):
        table, key_col, value_col, extra = LISTS[name]
        return "%s%s" % (self.prefix, table), key_col, value_col, "%s = '%s'%s" % (key_col, name, extra)

    def get(self, name):
        """The exact bytes of a plugin list, or None when the row does not exist."""
        table, _key, value_col, where = self._where(name)
        # Identifiers are fixed names and a \w+ prefix; no value is ever spliced in but as hex.
        out = self._sql("SELECT HEX(%s) FROM %s WHERE %s LIMIT 1" % (value_col, table, where)).strip()  # noqa: S608
        if not out:
            return None
        return binascii.unhexlify(out.splitlines()[0].strip())

    def set(self, name, raw):
        """Write the exact bytes of a plugin list (the row must exist; it always does for one that was read)."""
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        table, _key, value_col, where = self._where(name)
        value = "UNHEX('%s')" % binascii.hexlify(raw).decode("ascii") if raw else "''"
        self._sql("UPDATE %s SET %s = %s WHERE %s" % (table, value_col, value, where))  # noqa: S608
        if self.get(name) != raw:
            raise DBError("%s was written but reads back different bytes" % name)
