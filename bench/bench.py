#!/usr/bin/env python3
"""Orchestrates the session-rocket benchmark (stdlib only). Run via bench/run.sh.

1. Recreates the `bench_` tables in the local MariaDB and starts the release
   app (which creates its session tables at launch).
2. Throughput pass: for each config (1 session, 256 sessions) and route, a
   1 s wrk warm-up, then a measured wrk run with a fixed number of
   connections, with SHOW GLOBAL STATUS deltas around it.
3. Counting pass: a second app instance whose pools connect through an
   in-process MySQL protocol proxy that counts every client->server command
   packet (sequence id 0), classifies prepared statements by their SQL, and
   counts bytes. A fixed number of sequential requests per route and config,
   after a warm-up, gives exact statements, round trips and bytes per request.
4. Prints markdown tables and writes raw results to target/bench/<stamp>/.
"""

import argparse
import asyncio
import base64
import collections
import datetime
import hashlib
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "session-bench")
LUA = os.path.join(ROOT, "bench", "rotate.lua")
PEER_BIN = os.path.join(ROOT, "bench", "peers", "tower", "target", "release", "tower-peer")
FLEX_BIN = os.path.join(ROOT, "bench", "peers", "flex", "target", "release", "flex-peer")
# The routes measured on the tower-sessions peer, each beside ours.
PEER_ROUTES = [("floor_none", "GET", "/floor/none"), ("none", "GET", "/none"),
               ("read", "GET", "/read"), ("bump", "POST", "/bump")]
DB = dict(host="127.0.0.1", port=3306, user="root", name="test")
PREFIX = "bench_"
TTL = 86400

# (name, method, path, kind): kind says which cookies a request carries.
ROUTES = [
    ("floor_none", "GET", "/floor/none", "rr"),
    ("none", "GET", "/none", "rr"),
    ("floor_select", "GET", "/floor/select", "rr"),
    ("floor_read", "GET", "/floor/read", "rr"),
    ("diag_load", "GET", "/diag/load", "rr"),
    ("diag_load_packed", "GET", "/diag/load_packed", "rr"),
    ("diag_row", "GET", "/diag/row", "rr"),
    ("read", "GET", "/read", "rr"),
    ("floor_bump", "POST", "/floor/bump", "rr"),
    ("bump", "POST", "/bump", "rr"),
    ("vbump", "POST", "/vbump", "rr"),
    ("login", "POST", "/login", "nocookie"),
    ("logout", "POST", "/logout", "fresh"),
]
FLOOR_OF = {"none": "floor_none", "read": "floor_read", "bump": "floor_bump",
            "vbump": "floor_bump"}
# Interleaved ratios: the two goals, and the diagnostic split of `read`.
INTERLEAVE = [("none", "floor_none"), ("read", "floor_read"), ("diag_load", "floor_select"),
              ("bump", "floor_bump")]
STATUS_VARS = [
    "Questions", "Queries", "Com_select", "Com_insert", "Com_insert_select",
    "Com_update", "Com_update_multi", "Com_delete", "Com_delete_multi", "Com_replace",
    "Com_stmt_execute", "Com_stmt_prepare", "Com_stmt_close", "Com_stmt_reset",
    "Com_admin_commands", "Com_begin", "Com_commit", "Com_rollback", "Com_show_status",
    "Bytes_received", "Bytes_sent", "Connections", "Innodb_row_lock_waits",
    "Innodb_row_lock_time", "Innodb_deadlocks", "Created_tmp_tables",
]
DML = ["Com_select", "Com_insert", "Com_insert_select", "Com_update", "Com_update_multi",
       "Com_delete", "Com_delete_multi", "Com_replace"]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- database

def mysql_cmd():
    return ["mysql", "-u" + DB["user"], "-h" + DB["host"], "-P" + str(DB["port"]), DB["name"]]


def sql(query):
    out = subprocess.run(mysql_cmd() + ["-N", "-B", "-e", query],
                         capture_output=True, text=True, check=True)
    return out.stdout


def sql_script(script):
    subprocess.run(mysql_cmd(), input=script, text=True, check=True)


def status():
    names = ",".join("'%s'" % v for v in STATUS_VARS)
    out = sql("SHOW GLOBAL STATUS WHERE Variable_name IN (%s)" % names)
    values = {}
    for line in out.splitlines():
        k, v = line.split("\t")
        values[k] = int(v)
    return values


def delta(a, b):
    return {k: b.get(k, 0) - a.get(k, 0) for k in STATUS_VARS}


def reset_tables():
    sql("DROP TABLE IF EXISTS `{p}session_index`, `{p}session_previous`, `{p}session_fields`, `{p}sessions`, `{p}floor`".format(p=PREFIX))
    sql("CREATE TABLE `{p}floor` (id BIGINT NOT NULL PRIMARY KEY, k BINARY(32) NOT NULL,"
        " v VARBINARY(64) NOT NULL, n BIGINT NOT NULL DEFAULT 0, doc BLOB NOT NULL,"
        " UNIQUE KEY (k)) ENGINE=InnoDB".format(p=PREFIX))
    # `doc`: as many bytes as the session's load returns (~4.1 KB), in one row.
    sql("INSERT INTO `{p}floor` (id, k, v, doc) SELECT seq, UNHEX(SHA2(seq, 256)),"
        " CONCAT('floor row ', seq), REPEAT('x', 4000) FROM seq_1_to_256".format(p=PREFIX))


def new_token():
    raw = os.urandom(32)
    cookie = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return cookie, hashlib.sha256(raw).hexdigest()


def cookie_pk(cookie):
    raw = base64.urlsafe_b64decode(cookie + "=")
    h = hashlib.sha256(raw).hexdigest()
    return int(sql("SELECT pk FROM `%ssessions` WHERE token_hash = UNHEX('%s')" % (PREFIX, h)))


def bulk_sessions(n, template_cookie, tpl=None):
    """n fresh sessions holding copies of the template session's 22 fields,
    inserted with SQL (the shape logout destroys is the shape login makes)."""
    if tpl is None:
        tpl = cookie_pk(template_cookie)
    first = int(sql("SELECT COALESCE(MAX(pk), 0) FROM `%ssessions`" % PREFIX)) + 1
    now = int(time.time())
    cookies, parts = [], []
    for _ in range(n):
        c, h = new_token()
        cookies.append(c)
        parts.append("(UNHEX('%s'),%d,%d,%d)" % (h, now, now + TTL, TTL))
    lines = []
    for i in range(0, n, 2000):
        lines.append("INSERT INTO `%ssessions` (token_hash, created_at, expires_at, idle_timeout) VALUES %s;"
                     % (PREFIX, ",".join(parts[i:i + 2000])))
    # The template's document of small fields, then its rows of their own.
    lines.append("UPDATE `{p}sessions` s JOIN `{p}sessions` t ON t.pk = {t} SET s.data = t.data"
                 " WHERE s.pk >= {first};".format(p=PREFIX, t=tpl, first=first))
    lines.append("INSERT INTO `{p}session_fields` (session_pk, name, value) SELECT s.pk, f.name,"
                 " f.value FROM `{p}sessions` s JOIN `{p}session_fields` f ON f.session_pk = {t}"
                 " WHERE s.pk >= {first};".format(p=PREFIX, t=tpl, first=first))
    sql_script("\n".join(lines))
    return cookies


def count_alive(cookies):
    # In chunks: 250 000 hashes in one IN list exceed max_allowed_packet.
    total = 0
    for i in range(0, len(cookies), 20000):
        hashes = ",".join("UNHEX('%s')" % hashlib.sha256(base64.urlsafe_b64decode(c + "=")).hexdigest()
                          for c in cookies[i:i + 20000])
        query = "SELECT COUNT(*) FROM `%ssessions` WHERE token_hash IN (%s)" % (PREFIX, hashes)
        out = subprocess.run(mysql_cmd() + ["-N", "-B"], input=query, capture_output=True,
                             text=True, check=True)
        total += int(out.stdout)
    return total


def counter_of(cookie, name="counter"):
    """A field's stored value: from its row of its own when the session
    row's document marks it so (a versioned field), else from the
    document (base64)."""
    pk = cookie_pk(cookie)
    entry = sql("SELECT JSON_EXTRACT(data, '$.\"%s\"') FROM `%ssessions` WHERE pk = %d"
                % (name, PREFIX, pk)).strip()
    if entry.startswith('"'):
        return int(base64.b64decode(json.loads(entry)) or b"0")
    out = sql("SELECT value FROM `%ssession_fields` WHERE session_pk = %d AND name = '%s'"
              % (PREFIX, pk, name)).strip()
    return int(out or 0)


# The field each incrementing route changes (the 1-session run checks how
# many increments were kept).
COUNTER_OF = {"bump": "counter", "vbump": "hits"}


# ---------------------------------------------------------------- cpu

TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid):
    """CPU seconds (user + system) a process has used, 0 if it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except (OSError, ValueError, IndexError):
        return 0.0


def busy_cpu():
    """CPU seconds every process on the machine has used."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v) - v[3] - v[4]) / TICK


def db_pid():
    for name in ("mariadbd", "mysqld"):
        out = subprocess.run(["pidof", name], capture_output=True, text=True).stdout.split()
        if out:
            return int(out[0])
    return 0


def cpu_sample(app_pid, dbpid):
    import resource
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"app": proc_cpu(app_pid), "db": proc_cpu(dbpid),
            "children": ch.ru_utime + ch.ru_stime, "all": busy_cpu(), "t": time.time()}


def cpu_delta(a, b, requests):
    """Microseconds of CPU per request by process; `other` is everything
    else on the machine (other users' work: noise)."""
    n = max(requests, 1)
    d = {k: b[k] - a[k] for k in a}
    other = d["all"] - d["app"] - d["db"] - d["children"]
    return {"app_us": 1e6 * d["app"] / n, "db_us": 1e6 * d["db"] / n,
            "wrk_us": 1e6 * d["children"] / n, "other_us": 1e6 * other / n,
            "other_cores": other / max(d["t"], 1e-9)}


# ---------------------------------------------------------------- the app

class App:
    """A benchmarked app process (ours by default) answering on `port`."""

    def __init__(self, port, db_url, pool, logfile, binary=BIN, name="the app",
                 port_var="ROCKET_PORT", extra_env=None):
        self.port = port
        env = dict(os.environ, ROCKET_ADDRESS="127.0.0.1", BENCH_DB_URL=db_url,
                   BENCH_POOL=str(pool))
        env.update(extra_env or {})
        env[port_var] = str(port)
        self.log = open(logfile, "w")
        self.proc = subprocess.Popen([binary], env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while True:
            if self.proc.poll() is not None:
                raise SystemExit("%s exited at launch; see %s" % (name, logfile))
            try:
                if self.request("GET", "/floor/none")[0] == 200:
                    return
            except OSError:
                pass
            if time.time() > deadline:
                raise SystemExit("%s did not answer within 30 s" % name)
            time.sleep(0.2)

    def request(self, method, path, cookie=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            headers = {"Cookie": "session=" + cookie} if cookie else {}
            conn.request(method, path, headers=headers)
            r = conn.getresponse()
            r.read()
            return r.status, r.getheader("Set-Cookie")
        finally:
            conn.close()

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


class Peer(App):
    """The tower-sessions peer (bench/peers/tower), on the same database."""

    def __init__(self, port, db_url, pool, logfile):
        super().__init__(port, db_url, pool, logfile, binary=PEER_BIN,
                         name="the tower-sessions peer", port_var="PEER_PORT")


class FlexPeer(App):
    """The rocket_flex_session peer (bench/peers/flex), on its own SQLite file."""

    def __init__(self, port, db_url, pool, logfile):
        super().__init__(port, db_url, pool, logfile, binary=FLEX_BIN,
                         name="the rocket_flex_session peer")


def sqlite_url(out, who, tag=""):
    path = os.path.join(out, "sqlite_%s%s.db" % (who, tag))
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.unlink(path + suffix)
    return "sqlite://%s?mode=rwc" % path


SQLITE_ROUTES = [("none", "GET", "/none"), ("read", "GET", "/read"), ("bump", "POST", "/bump")]


def sqlite_pass(args, out):
    """The embedded default: ours on SQLite beside rocket_flex_session on
    SQLite (each on its own file, WAL, synchronous=NORMAL), both running, the
    same routes in `args.sqlite_rounds` interleaved rounds (ours, peer, peer,
    ours, ...), so drift hits both alike. Returns {"route/cfg": {...}}."""
    apps = {"ours": App(args.port + 4, sqlite_url(out, "ours"), args.pool,
                        os.path.join(out, "sqlite_ours.log")),
            "flex": FlexPeer(args.port + 5, sqlite_url(out, "flex"), args.pool,
                             os.path.join(out, "sqlite_flex.log"))}
    res = {}
    try:
        sessions = {who: login_sessions(a.port, max(args.configs)) for who, a in apps.items()}
        for cfg in args.configs:
            files = {}
            for who in apps:
                files[who] = os.path.join(out, "sqlite_%s_cookies_%d.txt" % (who, cfg))
                write(files[who], "\n".join(sessions[who][:cfg]) + "\n")
            for name, method, path in SQLITE_ROUTES:
                tot = {w: [0, 0.0] for w in apps}
                for rnd in range(args.sqlite_rounds):
                    order = ("ours", "flex") if rnd % 2 == 0 else ("flex", "ours")
                    for who in order:
                        a = apps[who]
                        wrk(args, a.port, method, path, files[who], "rr", args.warmup, False)
                        r = parse_wrk(wrk(args, a.port, method, path, files[who], "rr",
                                          args.sqlite_secs, False))
                        tot[who][0] += r["requests"]
                        tot[who][1] += r["requests"] / max(r["rps"] or 1, 1)
                        res.setdefault("%s/%d" % (name, cfg), {}).setdefault(
                            who + "_rounds", []).append(r["rps"] or 0)
                        if r["non2xx"]:
                            log("  sqlite %s %s: %d non-2xx" % (who, name, r["non2xx"]))
                row = res["%s/%d" % (name, cfg)]
                for who in apps:
                    row[who] = tot[who][0] / max(tot[who][1], 1e-9)
                row["ratio"] = row["ours"] / max(row["flex"], 1)
                row["round_ratios"] = [o / max(f, 1) for o, f in
                                       zip(row["ours_rounds"], row["flex_rounds"])]
                log("  sqlite %-5s %3d sessions: ours %7.0f, rocket_flex_session %7.0f req/s"
                    " = %.2f (rounds %s)" % (name, cfg, row["ours"], row["flex"], row["ratio"],
                                             ", ".join("%.2f" % x for x in row["round_ratios"])))
    finally:
        for a in apps.values():
            a.stop()
    return res


STORE_ROUTES = [("read", "GET", "/read", "rr"), ("bump", "POST", "/bump", "rr"),
                ("login", "POST", "/login", "nocookie")]
PG_URL = "postgres://root@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379"
REDIS_CLUSTER_URL = "redis+cluster://127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003"
ENCRYPTION_KEY = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="


def interleaved_rounds(args, out, apps, names, tag, base):
    """Each of `apps` (all running, each with its own sessions) on every
    route of STORE_ROUTES, in `args.sqlite_rounds` rounds whose order
    rotates, so drift hits them alike. Returns {"route/cfg": {name: req/s}}
    and logs each row with its ratios to `base`."""
    sessions = {who: login_sessions(a.port, max(args.configs)) for who, a in apps.items()}
    res = {}
    for cfg in args.configs:
        files = {}
        for who in apps:
            files[who] = os.path.join(out, "%s_%s_cookies_%d.txt"
                                      % (tag, who.replace("+", "_"), cfg))
            write(files[who], "\n".join(sessions[who][:cfg]) + "\n")
        for name, method, path, mode in STORE_ROUTES:
            if name == "login" and cfg != 1:
                continue
            tot = {w: [0, 0.0] for w in apps}
            for rnd in range(args.sqlite_rounds):
                order = names[rnd % len(names):] + names[:rnd % len(names)]
                for who in order:
                    a = apps[who]
                    cf = "-" if mode == "nocookie" else files[who]
                    wrk(args, a.port, method, path, cf, "rr", args.warmup, False)
                    r = parse_wrk(wrk(args, a.port, method, path, cf, "rr",
                                      args.sqlite_secs, False))
                    tot[who][0] += r["requests"]
                    tot[who][1] += r["requests"] / max(r["rps"] or 1, 1)
                    if r["non2xx"]:
                        log("  %s %s %s: %d non-2xx" % (tag, who, name, r["non2xx"]))
            row = {who: tot[who][0] / max(tot[who][1], 1e-9) for who in apps}
            res["%s/%d" % (name, cfg)] = row
            log("  %-5s %3d sessions: %s" % (name, cfg, ", ".join(
                "%s %.0f (%.3f)" % (w, row[w], row[w] / max(row[base], 1)) for w in names)))
    return res


def stores_pass(args, out, mysql_url):
    """Our app on each store beside MySQL, and on MySQL with every value
    encrypted, all running at once, in `args.sqlite_rounds` interleaved
    rounds per route (the order rotates every round), so drift hits them
    alike. Returns {"route/cfg": {variant: req/s, ...}}."""
    variants = [("mysql", mysql_url, {}),
                ("mysql+encryption", mysql_url, {"BENCH_ENCRYPTION_KEY": ENCRYPTION_KEY}),
                ("postgres", PG_URL, {}),
                ("redis", REDIS_URL, {}),
                ("cookie", "cookie", {"BENCH_ENCRYPTION_KEY": ENCRYPTION_KEY})]
    apps = {}
    res = {}
    try:
        for i, (who, url, env) in enumerate(variants):
            env = dict(env)
            env.setdefault("BENCH_ENCRYPTION_KEY", "")
            # A session that fits a cookie (~2.9 KB sealed), for every store.
            env["BENCH_CART_ITEMS"] = "25"
            apps[who] = App(args.port + 10 + i, url, args.pool,
                            os.path.join(out, "store_%s.log" % who.replace("+", "_")),
                            extra_env=env)
        names = [w for w, _, _ in variants]
        res = interleaved_rounds(args, out, apps, names, "store", "mysql")
    finally:
        for a in apps.values():
            a.stop()
        sql("DROP TABLE IF EXISTS `{p}session_index`, `{p}session_previous`, `{p}session_fields`, `{p}sessions`"
            .format(p=PREFIX))
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "root", "-d", "test", "-qc",
                        "DROP TABLE IF EXISTS {p}session_index, {p}session_previous, {p}session_fields, {p}sessions"
                        .format(p=PREFIX)], check=False)
        subprocess.run("redis-cli --scan --pattern '%s*' | xargs -r -n 1000 redis-cli del >/dev/null"
                       % PREFIX, shell=True, check=False)
    return res


def redis_pass(args, out):
    """Our app on one Redis server (this build, and `--before BIN`, a build
    of the previous commit, when given) and on the Redis Cluster of
    `tests/cluster/redis-cluster.sh` (ports 7001-7006), all running at
    once, in `args.sqlite_rounds` interleaved rounds per route. Returns
    {"route/cfg": {variant: req/s}}."""
    subprocess.run(["bash", os.path.join(ROOT, "tests", "cluster", "redis-cluster.sh"), "up", "7001"],
                   check=True)
    variants = [("redis", BIN, REDIS_URL), ("cluster", BIN, REDIS_CLUSTER_URL)]
    if args.before:
        variants.insert(0, ("before", args.before, REDIS_URL))
    apps = {}
    res = {}
    try:
        for i, (who, binary, url) in enumerate(variants):
            apps[who] = App(args.port + 50 + i, url, args.pool,
                            os.path.join(out, "redis_%s.log" % who), binary=binary,
                            extra_env={"BENCH_ENCRYPTION_KEY": ""})
        names = [w for w, _, _ in variants]
        res = interleaved_rounds(args, out, apps, names, "redis", names[0])
    finally:
        for a in apps.values():
            a.stop()
        subprocess.run("redis-cli --scan --pattern '%s*' | xargs -r -n 1000 redis-cli del >/dev/null"
                       % PREFIX, shell=True, check=False)
        for port in (7001, 7002, 7003, 7004, 7005, 7006):
            # A node's own keys, deleted on it one command each in one
            # stream (a replica refuses: its primary has deleted them).
            subprocess.run("redis-cli -p %d --scan --pattern '%s*' | sed 's/^/DEL /' | redis-cli -p %d >/dev/null"
                           % (port, PREFIX, port), shell=True, check=False)
    return res


def redis_report(res):
    return ratios_report("Redis: one server and a Redis Cluster (ours, interleaved rounds)",
                         res, ["before", "redis", "cluster"])


def observe_pass(args, out, mysql_url):
    """What metrics, traces and events cost, on MySQL: our app as it was
    before them (`--before BIN`, a build of the previous commit, when
    given), today's with nothing listening ("off"), with the Prometheus
    recorder, an event handler and a subscriber at info level ("info": our
    spans are debug, so not built) and at debug level ("debug": every
    store call a span), all running at once, in `args.sqlite_rounds`
    interleaved rounds per route. Returns {"route/cfg": {variant: req/s}}."""
    variants = [("off", BIN, {}), ("info", BIN, {"BENCH_OBSERVE": "info"}),
                ("debug", BIN, {"BENCH_OBSERVE": "debug"})]
    if args.before:
        variants.insert(0, ("before", args.before, {}))
    apps = {}
    res = {}
    try:
        for i, (who, binary, env) in enumerate(variants):
            apps[who] = App(args.port + 40 + i, mysql_url, args.pool,
                            os.path.join(out, "observe_%s.log" % who), binary=binary,
                            extra_env=env)
        names = [w for w, _, _ in variants]
        res = interleaved_rounds(args, out, apps, names, "observe", names[0])
    finally:
        for a in apps.values():
            a.stop()
        sql("DROP TABLE IF EXISTS `{p}session_index`, `{p}session_previous`, `{p}session_fields`, `{p}sessions`"
            .format(p=PREFIX))
    return res


def ratios_report(title, res, order):
    """A table of req/s per variant of `order` present in `res`, with each
    one's ratio to the first."""
    names = [n for n in order if n in next(iter(res.values()))]
    base = names[0]
    lines = ["### " + title, "",
             "| route | sessions | " + " | ".join("%s req/s" % n for n in names)
             + " | " + " | ".join("%s / %s" % (n, base) for n in names[1:]) + " |",
             "|---|---:|" + "---:|" * (2 * len(names) - 1)]
    for key in sorted(res, key=lambda k: (int(k.split("/")[1]), k)):
        r = res[key]
        name, cfg = key.split("/")
        lines.append("| %s | %s | %s | %s |" % (
            name, cfg, " | ".join("%.0f" % r[n] for n in names),
            " | ".join("%.3f" % (r[n] / max(r[base], 1)) for n in names[1:])))
    return "\n".join(lines)


def observe_report(res):
    return ratios_report("Metrics, traces and events: their cost (ours on MySQL, interleaved rounds)",
                         res, ["before", "off", "info", "debug"])


def stores_report(res):
    names = ["mysql", "mysql+encryption", "postgres", "redis", "cookie"]
    lines = ["### Each store beside MySQL (ours, same app, interleaved rounds; "
             "a 25-item cart, so the session fits a cookie)", "",
             "| route | sessions | " + " | ".join("%s req/s" % n for n in names)
             + " | " + " | ".join("%s / mysql" % n for n in names[1:]) + " |",
             "|---|---:|" + "---:|" * (2 * len(names) - 1)]
    for key in sorted(res, key=lambda k: (int(k.split("/")[1]), k)):
        r = res[key]
        name, cfg = key.split("/")
        lines.append("| %s | %s | %s | %s |" % (
            name, cfg, " | ".join("%.0f" % r[n] for n in names),
            " | ".join("%.2f" % (r[n] / max(r["mysql"], 1)) for n in names[1:])))
    return "\n".join(lines)


GALERA = os.path.join(ROOT, "tests", "cluster", "galera.sh")
GALERA_ROUTES = [("read", "GET", "/read"), ("bump", "POST", "/bump")]


def galera_pass(args, out, mysql_url):
    """Read and bump through two instances on two nodes of a 3-node Galera
    cluster (tests/cluster/galera.sh, on this machine), beside one instance
    on one node and one instance on the single server, in interleaved
    rounds. "two" runs two wrk at once, each with half the connections, one
    per instance, on the same sessions (what a load balancer without sticky
    routing does). Returns {"route/cfg": {variant: req/s, ...}}."""
    subprocess.run(["bash", GALERA, "up"], check=True)
    node = lambda n: "mysql://root@127.0.0.1:%d/test" % (3310 + n)
    apps = {}
    res = {}
    try:
        apps["server"] = App(args.port + 30, mysql_url, args.pool,
                             os.path.join(out, "galera_server.log"))
        apps["node1"] = App(args.port + 31, node(1), args.pool,
                            os.path.join(out, "galera_node1.log"))
        apps["node2"] = App(args.port + 32, node(2), args.pool,
                            os.path.join(out, "galera_node2.log"))
        # What causal reads cost: the same instance without them.
        apps["nocausal"] = App(args.port + 33, node(1), args.pool,
                               os.path.join(out, "galera_nocausal.log"),
                               extra_env={"ROCKET_SESSIONS_CAUSAL_READS": "false"})
        sessions = {"server": login_sessions(apps["server"].port, max(args.configs)),
                    "cluster": login_sessions(apps["node1"].port, max(args.configs))}
        half = argparse.Namespace(**dict(vars(args), connections=max(args.connections // 2, 1),
                                         threads=max(args.threads // 2, 1)))
        variants = ["one/server", "one/node", "one/node-no-causal", "two/nodes"]
        for cfg in args.configs:
            files = {}
            for who in sessions:
                files[who] = os.path.join(out, "galera_%s_cookies_%d.txt" % (who, cfg))
                write(files[who], "\n".join(sessions[who][:cfg]) + "\n")
            for name, method, path in GALERA_ROUTES:
                tot = {v: [0, 0.0] for v in variants}
                for rnd in range(args.sqlite_rounds):
                    order = variants[rnd % len(variants):] + variants[:rnd % len(variants)]
                    for v in order:
                        if v == "two/nodes":
                            for a in ("node1", "node2"):
                                wrk(half, apps[a].port, method, path, files["cluster"], "rr",
                                    args.warmup, False)
                            procs = [subprocess.Popen(
                                wrk_cmd(half, apps[a].port, method, path, files["cluster"], "rr",
                                        args.sqlite_secs, False),
                                stdout=subprocess.PIPE, text=True) for a in ("node1", "node2")]
                            runs = [parse_wrk(p.communicate()[0]) for p in procs]
                        else:
                            a = apps[{"one/server": "server", "one/node": "node1",
                                      "one/node-no-causal": "nocausal"}[v]]
                            f = files["server" if v == "one/server" else "cluster"]
                            wrk(args, a.port, method, path, f, "rr", args.warmup, False)
                            runs = [parse_wrk(wrk(args, a.port, method, path, f, "rr",
                                                  args.sqlite_secs, False))]
                        for r in runs:
                            if r["non2xx"]:
                                log("  galera %s %s: %d non-2xx" % (v, name, r["non2xx"]))
                        # Requests over the longest of the parallel runs.
                        tot[v][0] += sum(r["requests"] for r in runs)
                        tot[v][1] += max(r["requests"] / max(r["rps"] or 1, 1) for r in runs)
                row = {v: tot[v][0] / max(tot[v][1], 1e-9) for v in variants}
                res["%s/%d" % (name, cfg)] = row
                log("  galera %-5s %3d sessions: %s" % (name, cfg, ", ".join(
                    "%s %.0f (%.2f)" % (v, row[v], row[v] / max(row["one/server"], 1))
                    for v in variants)))
    finally:
        for a in apps.values():
            a.stop()
        sql("DROP TABLE IF EXISTS `{p}session_index`, `{p}session_previous`, `{p}session_fields`, `{p}sessions`"
            .format(p=PREFIX))
        subprocess.run(["bash", GALERA, "down"], check=False)
    return res


def galera_report(res):
    variants = ["one/server", "one/node", "one/node-no-causal", "two/nodes"]
    lines = ["### Galera: two instances on two nodes beside one instance (same run, "
             "interleaved rounds, all on this 2-core machine)", "",
             "| route | sessions | " + " | ".join("%s req/s" % v for v in variants)
             + " | one/node / one/server | one/node / no-causal | two/nodes / one/server |",
             "|---|---:|" + "---:|" * (len(variants) + 3)]
    for key in sorted(res, key=lambda k: (int(k.split("/")[1]), k)):
        r = res[key]
        name, cfg = key.split("/")
        lines.append("| %s | %s | %s | %.2f | %.2f | %.2f |" % (
            name, cfg, " | ".join("%.0f" % r[v] for v in variants),
            r["one/node"] / max(r["one/server"], 1),
            r["one/node"] / max(r["one/node-no-causal"], 1),
            r["two/nodes"] / max(r["one/server"], 1)))
    return "\n".join(lines)


def sqlite_report(res):
    lines = ["### SQLite beside rocket_flex_session 0.2 (the embedded default), same run", "",
             "| route | sessions | rocket_flex_session req/s | ours req/s | ours / peer "
             "| per round |", "|---|---:|---:|---:|---:|---|"]
    for key in sorted(res, key=lambda k: (int(k.split("/")[1]), k)):
        r = res[key]
        name, cfg = key.split("/")
        lines.append("| %s | %s | %.0f | %.0f | %.2f | %s |" % (
            name, cfg, r["flex"], r["ours"], r["ratio"],
            ", ".join("%.2f" % x for x in r["round_ratios"])))
    return "\n".join(lines)


def peer_pass(args, out, url):
    """The same routes, workload and wrk settings on the tower-sessions
    peer; returns {"route/cfg": {"rps": ...}}."""
    peer = Peer(args.port + 1, url, args.pool, os.path.join(out, "peer.log"))
    results = {}
    try:
        sessions = login_sessions(peer.port, max(args.configs))
        for cfg in args.configs:
            cfile = os.path.join(out, "peer_cookies_%d.txt" % cfg)
            write(cfile, "\n".join(sessions[:cfg]) + "\n")
            for name, method, path in PEER_ROUTES:
                wrk(args, peer.port, method, path, cfile, "rr", args.warmup, False)
                text = wrk(args, peer.port, method, path, cfile, "rr", args.duration)
                write(os.path.join(out, "peer_wrk_%s_%d.txt" % (name, cfg)), text)
                r = parse_wrk(text)
                results["%s/%d" % (name, cfg)] = r
                log("  tower %-10s %3d sessions: %9.0f req/s  non2xx %d"
                    % (name, cfg, r["rps"] or 0, r["non2xx"]))
    finally:
        peer.stop()
        sql("DROP TABLE IF EXISTS `test`.`bench_tower_sessions`")
    return results


def peer_report(args, thr, peer):
    """Ours beside tower-sessions, as ratios from this run."""
    lines = ["### Beside tower-sessions 0.14 (axum + its sqlx MySqlStore), same run", "",
             "| route | sessions | tower-sessions req/s | ours req/s | ours / tower |",
             "|---|---:|---:|---:|---:|"]
    for cfg in args.configs:
        for name, _, _ in PEER_ROUTES:
            p = peer.get("%s/%d" % (name, cfg), {}).get("rps") or 0
            o = thr.get("%s/%d" % (name, cfg), {}).get("rps") or 0
            ratio = "%.2f" % (o / p) if p else "n/a"
            lines.append("| %s | %d | %.0f | %.0f | %s |" % (name, cfg, p, o, ratio))
    lines += ["", "`floor_none` is the framework alone (Rocket against axum, no session): "
              "read the other rows against it to see what is Rocket and what is the session "
              "layer.", "", "| goal | measured | result |", "|---|---|---|"]
    for cfg in args.configs:
        for name, limit in (("bump", 1.5), ("read", 1.3)):
            p = peer.get("%s/%d" % (name, cfg), {}).get("rps") or 0
            o = thr.get("%s/%d" % (name, cfg), {}).get("rps") or 0
            if p:
                lines.append("| `%s` >= %.1fx tower-sessions (%d) | %.2fx | %s |"
                             % (name, limit, cfg, o / p, "PASS" if o / p >= limit else "FAIL"))
    return "\n".join(lines)


def size_sweep(args, out, url):
    """Read and bump on sessions whose cart grows (~1 KB, ~16 KB, ~128 KB),
    ours beside the tower-sessions peer, 256 sessions each."""
    rows = []
    try:
        for items in args.sizes:
            os.environ["BENCH_CART_ITEMS"] = str(items)
            rw = json.loads(subprocess.run([BIN, "--rewrite-bytes"], capture_output=True,
                                           text=True, check=True).stdout)
            row = {"items": items, "session_bytes": rw["value_bytes"] + rw["name_bytes"]}
            for who in ("ours", "tower"):
                logfile = os.path.join(out, "sweep_%s_%d.log" % (who, items))
                app = (App(args.port + 2, url, args.pool, logfile) if who == "ours"
                       else Peer(args.port + 3, url, args.pool, logfile))
                try:
                    status_code, _ = app.request("POST", "/login")
                    if status_code != 200:
                        # tower-sessions' MySqlStore keeps the record in a
                        # BLOB (64 KiB): a larger session cannot be saved.
                        log("  %s: login answers %d at %d items; not measured"
                            % (who, status_code, items))
                        row["%s_read" % who] = row["%s_bump" % who] = None
                        continue
                    sessions = login_sessions(app.port, 256)
                    cfile = os.path.join(out, "sweep_%s_%d.txt" % (who, items))
                    write(cfile, "\n".join(sessions) + "\n")
                    for name, method, path in (("read", "GET", "/read"), ("bump", "POST", "/bump")):
                        wrk(args, app.port, method, path, cfile, "rr", args.warmup, False)
                        r = parse_wrk(wrk(args, app.port, method, path, cfile, "rr",
                                          args.sweep_secs))
                        row["%s_%s" % (who, name)] = r["rps"] or 0
                        row["%s_%s_non2xx" % (who, name)] = r["non2xx"]
                finally:
                    app.stop()
            log("  %5d items (%7d bytes): read %s vs %s, bump %s vs %s req/s"
                % (items, row["session_bytes"], row["ours_read"], row["tower_read"],
                   row["ours_bump"], row["tower_bump"]))
            rows.append(row)
    finally:
        os.environ.pop("BENCH_CART_ITEMS", None)
        sql("DROP TABLE IF EXISTS `test`.`bench_tower_sessions`")
    write(os.path.join(out, "size_sweep.svg"), sweep_svg(rows))
    return rows


def rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0


def table_bytes(pattern):
    """Bytes the InnoDB files of the tables matching `pattern` take on disk."""
    out = sql("SELECT COALESCE(SUM(ALLOCATED_SIZE), 0) FROM information_schema.INNODB_SYS_TABLESPACES"
              " WHERE NAME LIKE 'test/%s'" % pattern)
    return int(out.strip() or 0)


def fill_ours(first_seq, last_seq, tpl):
    """Adds sessions first_seq..last_seq (copies of the template's 22 field
    rows) in chunks, as a login would leave them."""
    now = int(time.time())
    for a in range(first_seq, last_seq + 1, 50000):
        b = min(a + 49999, last_seq)
        first = int(sql("SELECT COALESCE(MAX(pk), 0) FROM `%ssessions`" % PREFIX)) + 1
        sql_script(
            "INSERT INTO `{p}sessions` (token_hash, created_at, expires_at, idle_timeout)"
            " SELECT UNHEX(SHA2(CONCAT('scale-', seq), 256)), {now}, {exp}, {ttl}"
            " FROM seq_{a}_to_{b};\n"
            "INSERT INTO `{p}session_fields` (session_pk, name, value) SELECT s.pk, f.name, f.value"
            " FROM `{p}sessions` s JOIN `{p}session_fields` f ON f.session_pk = {tpl}"
            " WHERE s.pk >= {first};".format(p=PREFIX, now=now, exp=now + TTL, ttl=TTL, a=a,
                                             b=b, tpl=tpl, first=first))


def fill_tower(first_seq, last_seq):
    for a in range(first_seq, last_seq + 1, 50000):
        b = min(a + 49999, last_seq)
        sql("INSERT INTO `bench_tower_sessions` (id, data, expiry_date)"
            " SELECT LEFT(TO_BASE64(UNHEX(SHA2(CONCAT('scale-', seq), 256))), 22), t.data,"
            " t.expiry_date FROM seq_%d_to_%d JOIN (SELECT data, expiry_date FROM"
            " `bench_tower_sessions` LIMIT 1) t" % (a, b))


SCALE_ROUTES = [("read", "GET", "/read", "rr"), ("bump", "POST", "/bump", "rr"),
                ("login", "POST", "/login", "nocookie")]


def scale_sweep(args, out, url):
    """Login, read and bump with 10k, 100k, 1M live sessions in the tables
    (ours beside tower-sessions, both filling the same server), and the
    bytes each store's tables take on disk per session. The tables grow from
    one step to the next; the sessions driven are 256 fresh logins per step,
    and login itself runs last (it adds sessions)."""
    sql("DROP TABLE IF EXISTS `{p}session_index`, `{p}session_previous`, `{p}session_fields`, `{p}sessions`, `bench_tower_sessions`"
        .format(p=PREFIX))
    apps = {"ours": App(args.port + 6, url, args.pool, os.path.join(out, "scale_ours.log")),
            "tower": Peer(args.port + 7, url, args.pool, os.path.join(out, "scale_tower.log"))}
    rows = []
    try:
        tpl = cookie_pk(login_sessions(apps["ours"].port, 1)[0])
        login_sessions(apps["tower"].port, 1)
        have = 0
        for n in sorted(args.scales):
            t0 = time.time()
            fill_ours(have + 1, n, tpl)
            t1 = time.time()
            fill_tower(have + 1, n)
            t2 = time.time()
            have = n
            row = {"sessions": n, "fill_s": {"ours": t1 - t0, "tower": t2 - t1}}
            counts = {"ours": int(sql("SELECT COUNT(*) FROM `%ssessions`" % PREFIX)),
                      "tower": int(sql("SELECT COUNT(*) FROM `bench_tower_sessions`"))}
            row["disk"] = {"ours": table_bytes(PREFIX + "session%"),
                           "tower": table_bytes("bench_tower_sessions")}
            row["disk_per_session"] = {w: row["disk"][w] / max(counts[w], 1) for w in counts}
            for who, a in apps.items():
                cfile = os.path.join(out, "scale_%s_%d.txt" % (who, n))
                write(cfile, "\n".join(login_sessions(a.port, 256)) + "\n")
                for name, method, path, k in SCALE_ROUTES:
                    f = cfile if k == "rr" else "-"
                    wrk(args, a.port, method, path, f, "rr", args.warmup, False)
                    r = parse_wrk(wrk(args, a.port, method, path, f, "rr", args.sweep_secs,
                                      False))
                    row["%s_%s" % (who, name)] = r["rps"] or 0
                    row["%s_%s_non2xx" % (who, name)] = r["non2xx"]
                row["%s_rss_mb" % who] = rss_mb(a.proc.pid)
            log("  %8d sessions (fill %.0f s / %.0f s; disk %.0f / %.0f bytes per session):"
                " login %.0f vs %.0f, read %.0f vs %.0f, bump %.0f vs %.0f req/s"
                % (n, t1 - t0, t2 - t1, row["disk_per_session"]["ours"],
                   row["disk_per_session"]["tower"], row["ours_login"], row["tower_login"],
                   row["ours_read"], row["tower_read"], row["ours_bump"], row["tower_bump"]))
            rows.append(row)
    finally:
        for a in apps.values():
            a.stop()
        sql("DROP TABLE IF EXISTS `{p}session_index`, `{p}session_previous`, `{p}session_fields`, `{p}sessions`, `bench_tower_sessions`"
            .format(p=PREFIX))
    return rows


def scale_report(rows):
    lines = ["### Scale sweep beside tower-sessions (live sessions in the tables, 256 driven)",
             "", "| live sessions | login ours / tower | read ours / tower | bump ours / tower "
             "| disk per session ours / tower | app RSS ours / tower |",
             "|---:|---|---|---|---|---|"]
    for r in rows:
        def cell(name):
            return "%.0f / %.0f = %.2f" % (r["ours_" + name], r["tower_" + name],
                                           r["ours_" + name] / max(r["tower_" + name], 1))
        lines.append("| %d | %s | %s | %s | %.0f / %.0f B | %.0f / %.0f MB |" % (
            r["sessions"], cell("login"), cell("read"), cell("bump"),
            r["disk_per_session"]["ours"], r["disk_per_session"]["tower"],
            r["ours_rss_mb"], r["tower_rss_mb"]))
    return "\n".join(lines)


def sweep_svg(rows):
    """A small line chart (stdlib only): req/s against session size, ours
    beside tower-sessions, for read and bump."""
    import math
    w, h, left, right, top, bottom = 640, 360, 70, 160, 30, 50
    xs = [math.log10(r["session_bytes"]) for r in rows]
    ymax = max(max(r[k] or 0 for k in ("ours_read", "tower_read", "ours_bump", "tower_bump"))
               for r in rows) * 1.1
    x0, x1 = min(xs), max(xs)

    def px(x):
        return left + (x - x0) / ((x1 - x0) or 1) * (w - left - right)

    def py(y):
        return h - bottom - y / ymax * (h - top - bottom)

    series = [("ours_read", "#1f77b4", "", "read, ours"),
              ("tower_read", "#1f77b4", "6,4", "read, tower-sessions"),
              ("ours_bump", "#d62728", "", "bump, ours"),
              ("tower_bump", "#d62728", "6,4", "bump, tower-sessions")]
    parts = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
             'font-family="sans-serif" font-size="12">' % (w, h),
             '<rect width="100%" height="100%" fill="white"/>',
             '<text x="%d" y="18">req/s against session size (256 sessions, same run)</text>'
             % left]
    for i in range(5):
        y = ymax * i / 4
        parts.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>'
                     % (left, w - right, py(y), py(y)))
        parts.append('<text x="%d" y="%.1f" text-anchor="end">%.0f</text>' % (left - 6, py(y) + 4, y))
    for r, x in zip(rows, xs):
        parts.append('<text x="%.1f" y="%d" text-anchor="middle">%.1f KB</text>'
                     % (px(x), h - bottom + 18, r["session_bytes"] / 1024))
    for i, (key, color, dash, name) in enumerate(series):
        pts = " ".join("%.1f,%.1f" % (px(x), py(r[key])) for r, x in zip(rows, xs)
                       if r[key] is not None)
        parts.append('<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>'
                     % (pts, color, ' stroke-dasharray="%s"' % dash if dash else ""))
        ly = top + 20 + 18 * i
        parts.append('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="2"%s/>'
                     % (w - right + 10, w - right + 34, ly, ly, color,
                        ' stroke-dasharray="%s"' % dash if dash else ""))
        parts.append('<text x="%d" y="%d">%s</text>' % (w - right + 40, ly + 4, name))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def sweep_report(rows):
    lines = ["### Session-size sweep beside tower-sessions (256 sessions, same run)", "",
             "| cart items | session bytes | read ours / tower | bump ours / tower |",
             "|---:|---:|---|---|"]
    def cell(ours, tower):
        if tower is None:
            return "%.0f / cannot store it" % ours
        return "%.0f / %.0f = %.2f" % (ours, tower, ours / max(tower, 1))
    for r in rows:
        lines.append("| %d | %d | %s | %s |" % (
            r["items"], r["session_bytes"], cell(r["ours_read"], r["tower_read"]),
            cell(r["ours_bump"], r["tower_bump"])))
    lines += ["", "tower-sessions' `MySqlStore` keeps the whole record in a `BLOB` column "
              "(64 KiB): a larger session cannot be saved there (its login answers 500)."]
    return "\n".join(lines)


class Client:
    """One keep-alive HTTP connection, for the sequential counting pass."""

    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def request(self, method, path, cookie=None):
        headers = {"Cookie": "session=" + cookie} if cookie else {}
        self.conn.request(method, path, headers=headers)
        r = self.conn.getresponse()
        r.read()
        return r.status, r.getheader("Set-Cookie")


def cookie_value(set_cookie):
    m = re.match(r"session=([^;]*)", set_cookie or "")
    if not m or not m.group(1):
        raise SystemExit("login set no session cookie: %r" % set_cookie)
    return m.group(1)


def login_sessions(port, n):
    c = Client(port)
    out = []
    for _ in range(n):
        st, sc = c.request("POST", "/login")
        assert st == 200, st
        out.append(cookie_value(sc))
    return out


# ---------------------------------------------------------------- wrk

UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def parse_wrk(text):
    def num(pattern, default=None):
        m = re.search(pattern, text)
        return float(m.group(1)) if m else default

    lat = {}
    for p, v, u in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", text, re.M):
        lat[p] = float(v) * UNIT[u]
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    return {
        "rps": num(r"Requests/sec:\s+([\d.]+)"),
        "requests": int(num(r"(\d+) requests in", 0)),
        "p50_ms": lat.get("50"),
        "p99_ms": lat.get("99"),
        "non2xx": int(num(r"Non-2xx or 3xx responses: (\d+)", 0)),
        "socket_errors": sum(int(x) for x in errs.groups()) if errs else 0,
    }


def wrk_cmd(args, port, method, path, cookie_file, mode, seconds, latency=True):
    cmd = ["wrk", "-t%d" % args.threads, "-c%d" % args.connections, "-d%ds" % seconds,
           "--timeout", "10s", "-s", LUA]
    if latency:
        cmd.append("--latency")
    return cmd + ["http://127.0.0.1:%d" % port, "--", method, path, cookie_file, mode,
                  str(args.threads)]


def wrk(args, port, method, path, cookie_file, mode, seconds, latency=True):
    cmd = wrk_cmd(args, port, method, path, cookie_file, mode, seconds, latency)
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


# ---------------------------------------------------------------- proxy

COMMANDS = {0x01: "quit", 0x03: "query", 0x0e: "ping", 0x11: "change_user",
            0x16: "prepare", 0x17: "execute", 0x18: "send_long_data", 0x19: "close",
            0x1a: "reset_stmt", 0x1f: "reset_connection"}
NO_REPLY = {"close", "send_long_data", "quit"}


def label(sql_text):
    s = " ".join(sql_text.split())
    u = s.upper()
    p = PREFIX
    if u.startswith("SELECT S.CREATED_AT"):
        return "load"
    if u.startswith("SELECT F.VALUE"):
        return "load_field"
    if u.startswith("SELECT V FROM %sFLOOR" % p.upper()):
        return "floor_select"
    if u.startswith("SELECT DOC FROM %sFLOOR" % p.upper()):
        return "floor_read"
    if u.startswith("INSERT INTO `%sSESSION_FIELDS` (SESSION_PK, NAME, VALUE) VALUES" % p.upper()):
        # a login's fields, by the new session's key
        return "insert(%d)" % u.count("(?, ?, ?)")
    if u.startswith("INSERT INTO `%sSESSION_FIELDS` (SESSION_PK, NAME, VALUE, VERSION)" % p.upper()):
        return "cas:insert"
    if u.startswith("INSERT INTO `%sSESSION_FIELDS`" % p.upper()):
        return "upsert(%d)" % u.count("SELECT ?")
    if u.startswith("UPDATE `%sSESSION_FIELDS` SET VALUE = ?, VERSION" % p.upper()):
        return "cas:update"
    if u.startswith("UPDATE `%sSESSION_FIELDS`" % p.upper()):
        # the plain update of fields the request read (counted as the write)
        return "upsert:update(%d)" % u.count("WHEN ?")
    if u.startswith("INSERT INTO `%sSESSIONS`" % p.upper()):
        return "create"
    if u.startswith("SELECT ID FROM %sFLOOR" % p.upper()):
        return "floor_bump_select"
    if u.startswith("UPDATE %sFLOOR" % p.upper()):
        return "floor_bump_update"
    if u.startswith("UPDATE") and "SET PREVIOUS_HASH" in u:
        return "rename"
    if u.startswith("UPDATE") and "SET EXPIRES_AT" in u:
        return "touch"
    if u.startswith("DELETE FROM `%sSESSIONS` WHERE TOKEN_HASH" % p.upper()):
        return "destroy"
    if u.startswith("DELETE FROM `%sSESSION_FIELDS`" % p.upper()):
        return "remove"
    return s[:48]


def kind(sql_text):
    w = sql_text.split(None, 1)[0].upper() if sql_text.split() else ""
    if w in ("SELECT", "INSERT", "UPDATE", "DELETE", "REPLACE"):
        return "statement"
    if w in ("BEGIN", "COMMIT", "ROLLBACK", "START"):
        return "transaction"
    return "other"


class Proxy:
    """A MySQL protocol proxy that counts what the app sends to the server."""

    def __init__(self, listen_port, upstream_port):
        self.listen_port = listen_port
        self.upstream_port = upstream_port
        self.lock = threading.Lock()
        self.c = collections.Counter()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.ready.wait(10)

    def snapshot(self):
        with self.lock:
            return collections.Counter(self.c)

    def _add(self, **kw):
        with self.lock:
            for k, v in kw.items():
                self.c[k.replace("__", ":")] += v

    def _bump(self, key, v=1):
        with self.lock:
            self.c[key] += v

    def _run(self):
        asyncio.run(self._main())

    async def _main(self):
        server = await asyncio.start_server(self._handle, "127.0.0.1", self.listen_port)
        self.ready.set()
        async with server:
            await server.serve_forever()

    async def _handle(self, creader, cwriter):
        sreader, swriter = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self._bump("connections")
        st = {"stmts": {}, "await_prepare": None}
        await asyncio.gather(self._pump(creader, swriter, st, True),
                             self._pump(sreader, cwriter, st, False),
                             return_exceptions=True)

    async def _pump(self, reader, writer, st, client):
        buf = b""
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                self._bump("bytes" if client else "bytes_from_server", len(data))
                writer.write(data)
                buf += data
                while len(buf) >= 4:
                    n = int.from_bytes(buf[:3], "little")
                    if len(buf) < 4 + n:
                        break
                    seq, payload = buf[3], buf[4:4 + n]
                    buf = buf[4 + n:]
                    if client:
                        self._client_packet(st, seq, payload, n + 4)
                    else:
                        self._server_packet(st, seq, payload)
                await writer.drain()
        finally:
            writer.close()

    def _client_packet(self, st, seq, payload, size):
        if seq != 0 or not payload:
            return
        name = COMMANDS.get(payload[0], "cmd_0x%02x" % payload[0])
        keys = collections.Counter({"cmd:" + name: 1, "packets": 1})
        if name not in NO_REPLY:
            keys["round_trips"] += 1
        if name == "prepare":
            st["await_prepare"] = payload[1:].decode("utf-8", "replace")
            keys["prepare:" + label(st["await_prepare"])] += 1
        elif name == "execute":
            sid = int.from_bytes(payload[1:5], "little")
            text = st["stmts"].get(sid, "?")
            lab = label(text)
            keys["exec:" + lab] += 1
            keys["exec_bytes:" + lab] += size
            keys[kind(text)] += 1
        elif name == "query":
            text = payload[1:].decode("utf-8", "replace")
            keys["query:" + label(text)] += 1
            keys[kind(text)] += 1
        with self.lock:
            self.c.update(keys)

    def _server_packet(self, st, seq, payload):
        if seq == 1 and st["await_prepare"] is not None:
            if payload[:1] == b"\x00" and len(payload) >= 5:
                st["stmts"][int.from_bytes(payload[1:5], "little")] = st["await_prepare"]
            st["await_prepare"] = None


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---------------------------------------------------------------- passes

def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def throughput_pass(args, out, app, sessions, template):
    results = {}
    for cfg in args.configs:
        cfg_cookies = os.path.join(out, "cookies_%d.txt" % cfg)
        write(cfg_cookies, "\n".join(sessions[:cfg]) + "\n")
        for name, method, path, k in ROUTES:
            if args.routes and name not in args.routes:
                continue
            fresh = None
            if k == "rr":
                cfile, mode = cfg_cookies, "rr"
            elif k == "nocookie":
                cfile, mode = "-", "rr"
            if k == "fresh":
                # Warm-up on its own batch; its rate sizes the measured batch.
                warm = bulk_sessions(args.logout_probe, template)
                wfile = os.path.join(out, "logout_warm_%d.txt" % cfg)
                write(wfile, "\n".join(warm) + "\n")
                text = wrk(args, app.port, method, path, wfile, "once", args.warmup, False)
                warm_rate = parse_wrk(text)["rps"] or 0
                need = int(max(warm_rate, 1000) * (args.duration + 1) * 1.6)
                log("  logout: warm-up %.0f req/s; creating %d sessions" % (warm_rate, need))
                fresh = bulk_sessions(need, template)
                cfile, mode = os.path.join(out, "logout_%d.txt" % cfg), "once"
                write(cfile, "\n".join(fresh) + "\n")
            else:
                wrk(args, app.port, method, path, cfile, mode, args.warmup, False)
            before_counter = (counter_of(sessions[0], COUNTER_OF[name])
                              if name in COUNTER_OF and cfg == 1 else None)
            s0 = status()
            load = os.getloadavg()[0]
            c0 = cpu_sample(app.proc.pid, args.db_pid)
            text = wrk(args, app.port, method, path, cfile, mode, args.duration)
            c1 = cpu_sample(app.proc.pid, args.db_pid)
            s1 = status()
            write(os.path.join(out, "wrk_%s_%d.txt" % (name, cfg)), text)
            r = parse_wrk(text)
            r["status_delta"] = delta(s0, s1)
            r["loadavg_before"] = load
            r["cpu"] = cpu_delta(c0, c1, r["requests"])
            if fresh is not None:
                r["fresh_sessions"] = len(fresh)
                r["fresh_left"] = count_alive(fresh)
                r["exhausted"] = r["fresh_left"] == 0
            if before_counter is not None:
                r["counter_before"] = before_counter
                r["counter_after"] = counter_of(sessions[0], COUNTER_OF[name])
            results["%s/%d" % (name, cfg)] = r
            log("  %-12s %3d sessions: %9.0f req/s  p50 %7.2f ms  p99 %7.2f ms  non2xx %d"
                "  cpu/req app %.0f us db %.0f us, other load %.2f cores"
                % (name, cfg, r["rps"] or 0, r["p50_ms"] or 0, r["p99_ms"] or 0, r["non2xx"],
                   r["cpu"]["app_us"], r["cpu"]["db_us"], r["cpu"]["other_cores"]))
    return results


def interleaved(args, out, app, cfg):
    """The floor ratios again, interleaved: floor and route alternate in
    short slices (ABBA order), so drift in the machine's load hits both
    alike. Returns {route: {ratio, min, max, slices}}."""
    cfile = os.path.join(out, "cookies_%d.txt" % cfg)
    spec = {n: (m, p) for n, m, p, _ in ROUTES}
    res = {}
    for route, floor in INTERLEAVE:
        if args.routes and (route not in args.routes or floor not in args.routes):
            continue
        tot = {route: [0, 0.0], floor: [0, 0.0]}
        pairs = []
        c0 = cpu_sample(app.proc.pid, args.db_pid)
        for i in range(args.ratio_slices):
            order = (floor, route) if i % 2 == 0 else (route, floor)
            got = {}
            for name in order:
                m, p = spec[name]
                r = parse_wrk(wrk(args, app.port, m, p, cfile, "rr", args.ratio_secs, False))
                tot[name][0] += r["requests"]
                tot[name][1] += r["requests"] / r["rps"]
                got[name] = r["rps"]
            pairs.append(got[route] / got[floor])
        ratio = (tot[route][0] / tot[route][1]) / (tot[floor][0] / tot[floor][1])
        other = cpu_delta(c0, cpu_sample(app.proc.pid, args.db_pid), 1)["other_cores"]
        res[route] = {"ratio": ratio, "min": min(pairs), "max": max(pairs), "slices": pairs,
                      "floor": floor, "other_cores": other}
        log("  interleaved %-5s / %-12s %3d sessions: %.3f (slices %.3f..%.3f, other load "
            "%.2f cores)" % (route, floor, cfg, ratio, min(pairs), max(pairs), other))
    return res


def profile(args, out, app, sessions):
    """perf samples of the app and the server while wrk drives `none` and
    `read` on 256 sessions: where the CPU goes (perf_<route>.txt), and the
    share of app samples in session code (session_core / session_rocket /
    the generated handle)."""
    cfile = os.path.join(out, "cookies_%d.txt" % max(args.configs))
    shares = {}
    for route in ("none", "read"):
        data = os.path.join(out, "perf_%s.data" % route)
        rec = subprocess.Popen(["perf", "record", "-F", "999", "-g", "-o", data, "-p",
                                "%d,%d" % (app.proc.pid, args.db_pid), "--", "sleep", "4"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wrk(args, app.port, "GET", "/" + route, cfile, "rr", 5, False)
        rec.wait()

        def rep(*extra):
            return subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children",
                                   "-g", "none"] + list(extra),
                                  capture_output=True, text=True).stdout
        by_dso = rep("--sort", "comm,dso", "--percent-limit", "0.5")
        by_sym = rep("--sort", "comm,dso,sym", "--percent-limit", "0.3")
        app_syms = rep("--comms", "rocket-worker-t", "--sort", "sym", "--percent-limit", "0")
        session = 0.0
        total = 0.0
        for line in app_syms.splitlines():
            m = re.match(r"\s+([\d.]+)%\s+\[.\]\s+(.*)", line)
            if not m:
                continue
            pct = float(m.group(1))
            total += pct
            if re.search(r"session_core|session_rocket|BenchSession|session_bench::Bench|sha2::|base64::", m.group(2)):
                session += pct
        shares[route] = {"session_code_pct_of_all_samples": session}
        write(os.path.join(out, "perf_%s.txt" % route),
              by_dso + "\n\n" + by_sym + "\n\nself samples in session code (user space, "
              "app threads): %.2f%% of all samples\n" % session)
        log("  perf %s: %.2f%% of all samples are self time in session code (%s)"
            % (route, session, os.path.join(out, "perf_%s.txt" % route)))
    return shares


def counting_pass(args, out, template_sessions):
    proxy_port = free_port()
    proxy = Proxy(proxy_port, DB["port"])
    app = App(args.port + 1, "mysql://%s@127.0.0.1:%d/%s" % (DB["user"], proxy_port, DB["name"]),
              args.pool, os.path.join(out, "app_counting.log"))
    results = {}
    try:
        sessions = template_sessions
        client = Client(app.port)
        for cfg in args.configs:
            for name, method, path, k in ROUTES:
                if args.routes and name not in args.routes:
                    continue
                n, w = args.count, args.count_warmup
                if k == "rr":
                    # Every session once before measuring, so the touch due
                    # on a session idle for `touch_after` (a once-a-minute
                    # UPDATE, reported separately) is not counted as the
                    # per-request cost.
                    w = max(w, cfg)
                if k == "rr":
                    seq = [sessions[i % cfg] for i in range(w + n)]
                elif k == "nocookie":
                    seq = [None] * (w + n)
                else:
                    seq = bulk_sessions(w + n, sessions[0])
                for c in seq[:w]:
                    client.request(method, path, c)
                p0, s0 = proxy.snapshot(), status()
                bad = 0
                for c in seq[w:]:
                    st, _ = client.request(method, path, c)
                    bad += st != 200
                p1, s1 = proxy.snapshot(), status()
                d = {k2: v for k2, v in (p1 - p0).items()}
                results["%s/%d" % (name, cfg)] = {
                    "requests": n, "non200": bad, "proxy": d, "status_delta": delta(s0, s1)}
                log("  %-12s %3d sessions: %5.2f stmts, %5.2f round trips, %7.1f bytes per request"
                    % (name, cfg, d.get("statement", 0) / n, d.get("round_trips", 0) / n,
                       d.get("bytes", 0) / n))
        # The statements a fresh connection costs (handshake, settings,
        # prepares), seen through the proxy for reference.
        results["_proxy_total"] = dict(proxy.snapshot())
    finally:
        app.stop()
    return results


# ---------------------------------------------------------------- report

def fmt(v, digits=2):
    if v is None:
        return "n/a"
    return ("%." + str(digits) + "f") % v


def report(args, meta, thr, cnt):
    lines = []
    rw = meta["rewrite"]
    whole = rw["value_bytes"] + rw["name_bytes"]
    for cfg in args.configs:
        lines.append("")
        lines.append("### %d session%s (%s)" % (cfg, "" if cfg == 1 else "s",
                     "every request on the same cookie" if cfg == 1 else
                     "cookies rotated round-robin per request"))
        lines.append("")
        lines.append("| route | req/s | p50 ms | p99 ms | stmts/req | round trips/req | "
                     "pings/req | prepares/req | bytes to / from server per req | ratio to floor (req/s) "
                     "| CPU us/req app / db | other load (cores) |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for name, _, _, _ in ROUTES:
            key = "%s/%d" % (name, cfg)
            if key not in thr:
                continue
            t = thr[key]
            c = cnt.get(key, {})
            p = c.get("proxy", {})
            n = c.get("requests") or 1
            floor = FLOOR_OF.get(name)
            ratio = ""
            if floor and "%s/%d" % (floor, cfg) in thr:
                f = thr["%s/%d" % (floor, cfg)]["rps"]
                ratio = "%.3f (%s)" % (t["rps"] / f, floor)
                if "interleaved" in t:
                    il = t["interleaved"]
                    ratio += "; interleaved %.3f [%.3f..%.3f]" % (il["ratio"], il["min"],
                                                                   il["max"])
            note = ""
            if t.get("non2xx") or t.get("socket_errors"):
                note = " (non-2xx %d, socket errors %d)" % (t["non2xx"], t["socket_errors"])
            if t.get("exhausted"):
                note += " (fresh sessions ran out)"
            cpu = t.get("cpu", {})
            lines.append("| %s%s | %.0f | %s | %s | %s | %s | %s | %s | %s | %s | %.0f / %.0f | %.2f |"
                         % (name, note, t["rps"], fmt(t["p50_ms"]), fmt(t["p99_ms"]),
                            fmt(p.get("statement", 0) / n), fmt(p.get("round_trips", 0) / n),
                            fmt(p.get("cmd:ping", 0) / n), fmt(p.get("cmd:prepare", 0) / n),
                            fmt(p.get("bytes", 0) / n, 0) + " / " + fmt(p.get("bytes_from_server", 0) / n, 0),
                            ratio, cpu.get("app_us", 0),
                            cpu.get("db_us", 0), cpu.get("other_cores", 0)))
        tr = {k2: thr.get("%s/%d" % (k2, cfg)) for k2 in ("floor_select", "diag_load", "read")}
        if all(tr.values()):
            lines.append("")
            lines.append("Decomposition of `read` vs the one-SELECT floor (same run): the store's "
                         "load query run directly (`diag_load`, all 22 field rows) reaches %.1f%% "
                         "of the floor; `read` reaches %.1f%% of `diag_load` (10 s runs)."
                         % (100 * tr["diag_load"]["rps"] / tr["floor_select"]["rps"],
                            100 * tr["read"]["rps"] / tr["diag_load"]["rps"]))
            il_d, il_r = tr["diag_load"].get("interleaved"), tr["read"].get("interleaved")
            if il_d and il_r and il_r.get("floor") == il_d.get("floor"):
                lines.append("Interleaved against the same floor: `diag_load` %.1f%% "
                             "[%.1f..%.1f], `read` %.1f%% [%.1f..%.1f], so `read` is %.1f%% "
                             "of `diag_load`." % (100 * il_d["ratio"], 100 * il_d["min"],
                                                  100 * il_d["max"], 100 * il_r["ratio"],
                                                  100 * il_r["min"], 100 * il_r["max"],
                                                  100 * il_r["ratio"] / il_d["ratio"]))
        lines.append("")
        lines.append("Statement mix per request (counting pass, %d requests per route):"
                     % args.count)
        lines.append("")
        for name, _, _, _ in ROUTES:
            key = "%s/%d" % (name, cfg)
            if key not in cnt:
                continue
            p, n = cnt[key]["proxy"], cnt[key]["requests"]
            mix = ", ".join("%s %.2f" % (k2[5:], v / n) for k2, v in sorted(p.items())
                            if k2.startswith("exec:") or k2.startswith("query:"))
            sd = {k2: v - meta["status_overhead"].get(k2, 0)
                  for k2, v in cnt[key]["status_delta"].items()}
            dml = sum(sd[v] for v in DML)
            lines.append("- `%s`: %s; global counters: DML (Com_select+insert+insert_select+"
                         "update+delete) %.2f, Com_stmt_execute %.2f, Bytes_received %.1f"
                         % (name, mix or "none", dml / n, sd["Com_stmt_execute"] / n,
                            sd["Bytes_received"] / n))
    for route, why in (("bump", "read-modify-write of a plain field: the last writer wins"),
                       ("vbump", "a versioned field, compare-and-set: none may be lost")):
        b1 = thr.get("%s/1" % route)
        if b1 and "counter_after" in b1:
            done = b1["requests"] - b1["non2xx"]
            rose = b1["counter_after"] - b1["counter_before"]
            lines.append("")
            lost = ("%d increments lost" % (done - rose) if rose < done else
                    "every increment kept; %d more than wrk counted: requests in flight when "
                    "it stopped" % (rose - done))
            lines.append("Concurrent `%s`s on one session (config 1, %d connections): %d "
                         "successful responses in the measured run raised the stored counter "
                         "by %d (%s; %s)." % (route, args.connections, done, rose, lost, why))
    # bump vs whole rewrite
    lines.append("")
    lines.append("### `bump` bytes vs a whole-session rewrite")
    lines.append("")
    lines.append("Whole session encoded with the session's codec (JSON): %d value bytes + %d "
                 "name bytes = %d bytes (cart alone %d)." % (rw["value_bytes"], rw["name_bytes"],
                                                            whole, rw["cart_bytes"]))
    for cfg in args.configs:
        key = "bump/%d" % cfg
        lkey = "login/%d" % cfg
        if key not in cnt:
            continue
        p, n = cnt[key]["proxy"], cnt[key]["requests"]
        total = p.get("bytes", 0) / n
        upsert = sum(v for k2, v in p.items() if k2.startswith("exec_bytes:upsert")) / n
        load = p.get("exec_bytes:load", 0) / n
        lp = cnt.get(lkey, {}).get("proxy", {})
        ln = cnt.get(lkey, {}).get("requests") or 1
        login_upsert = lp.get("exec_bytes:insert(22)", 0) / ln
        lines.append("- %d session%s: bump sends %.1f bytes/request in all (load %.1f + upsert "
                     "%.1f); that is %.1f%% of the %d-byte whole session (write alone: %.1f%%). "
                     "Login's 22-field insert packet, i.e. what a whole rewrite sends through "
                     "this store: %.1f bytes; bump's write is %.1f%% of it."
                     % (cfg, "" if cfg == 1 else "s", total, load, upsert,
                        100 * total / whole, whole, 100 * upsert / whole, login_upsert,
                        100 * upsert / login_upsert if login_upsert else float("nan")))
    return "\n".join(lines)


def goals(args, thr, cnt, meta):
    rw = meta["rewrite"]
    whole = rw["value_bytes"] + rw["name_bytes"]
    rows = []

    def per(key, what):
        c = cnt.get(key)
        if not c:
            return None
        return c["proxy"].get(what, 0) / c["requests"]

    for cfg in args.configs:
        def rps(name):
            t = thr.get("%s/%d" % (name, cfg))
            return t and t["rps"]
        for route, limit, what in (("none", 0.97, "within 3% of the no-session floor"),
                                   ("read", 0.85, "within 15% of the same-bytes one-row floor"),
                                   ("bump", 0.85, "within 15% of the SELECT + UPDATE floor")):
            t = thr.get("%s/%d" % (route, cfg))
            if not t or not rps(FLOOR_OF[route]):
                continue
            single = rps(route) / rps(FLOOR_OF[route])
            il = t.get("interleaved")
            # Judged on the lower of the two estimates from this run: the
            # measured runs (back to back) and the interleaved slices (ABBA,
            # which cancels drift in the machine's load).
            r = min(single, il["ratio"]) if il else single
            shown = "%.1f%% of floor in the measured runs" % (100 * single)
            if il:
                shown += "; interleaved %.1f%% (slices %.1f..%.1f%%, other load %.2f cores)" % (
                    100 * il["ratio"], 100 * il["min"], 100 * il["max"], il["other_cores"])
            rows.append(("`%s` %s (%d)" % (route, what, cfg), shown, r >= limit))
        b = cnt.get("bump/%d" % cfg)
        if b:
            p, n = b["proxy"], b["requests"]
            total = p.get("bytes", 0) / n
            upsert = sum(v for k2, v in p.items() if k2.startswith("exec_bytes:upsert")) / n
            rows.append(("`bump` sends <= 5%% of whole-rewrite bytes, write only (%d)" % cfg,
                         "%.1f%%" % (100 * upsert / whole), upsert <= 0.05 * whole))
            rows.append(("`bump` sends <= 5%% of whole-rewrite bytes, whole request (%d)" % cfg,
                         "%.1f%%" % (100 * total / whole), total <= 0.05 * whole))
        for name, limit in (("none", 0), ("read", 1), ("bump", 2), ("login", 2), ("logout", 1)):
            v = per("%s/%d" % (name, cfg), "statement")
            if v is not None:
                op = "==" if name in ("none", "read", "logout") else "<="
                ok = abs(v - limit) < 1e-9 if op == "==" else v <= limit + 1e-9
                rows.append(("statements/request `%s` %s %d (%d)" % (name, op, limit, cfg),
                             "%.3f" % v, ok))
        pings = sum(cnt[k]["proxy"].get("cmd:ping", 0) for k in cnt
                    if k.endswith("/%d" % cfg) and not k.startswith("_"))
        rows.append(("no pings on the request path (%d)" % cfg, "%d pings" % pings, pings == 0))
    out = ["| goal | measured | result |", "|---|---|---|"]
    for g, m, ok in rows:
        out.append("| %s | %s | %s |" % (g, m, "PASS" if ok else "FAIL"))
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=10, help="seconds per measured wrk run")
    ap.add_argument("--warmup", type=int, default=1, help="seconds of wrk warm-up per run")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2, help="wrk threads")
    ap.add_argument("--pool", type=int, default=10, help="max_connections of both pools")
    ap.add_argument("--port", type=int, default=8300)
    ap.add_argument("--count", type=int, default=400, help="requests per counting run")
    ap.add_argument("--count-warmup", type=int, default=50)
    ap.add_argument("--logout-probe", type=int, default=4000,
                    help="fresh sessions for the logout warm-up")
    ap.add_argument("--configs", type=int, nargs="+", default=[1, 256])
    ap.add_argument("--routes", nargs="*", default=None)
    ap.add_argument("--ratio-slices", type=int, default=6,
                    help="interleaved floor/route slices for the ratio goals")
    ap.add_argument("--ratio-secs", type=int, default=2)
    ap.add_argument("--perf", action="store_true",
                    help="also profile the app and the server with perf during `read`")
    ap.add_argument("--encrypt", action="store_true",
                    help="run our app with encryption_keys set (every value sealed)")
    ap.add_argument("--no-peer", action="store_true",
                    help="skip the tower-sessions peer and the size sweep")
    ap.add_argument("--sizes", type=int, nargs="*", default=[20, 340, 1200, 2700],
                    help="cart items per session for the size sweep (~1, ~16, ~58, ~128 KB)")
    ap.add_argument("--sweep-secs", type=int, default=5)
    ap.add_argument("--sqlite-rounds", type=int, default=4,
                    help="interleaved rounds of the SQLite pass (ours, peer, peer, ours)")
    ap.add_argument("--sqlite-secs", type=int, default=5, help="seconds per SQLite round")
    ap.add_argument("--no-sqlite", action="store_true", help="skip the SQLite pass")
    ap.add_argument("--scales", type=int, nargs="*", default=[10000, 100000, 1000000],
                    help="live sessions in the tables for the scale sweep (none: skip it)")
    ap.add_argument("--before", metavar="BIN", default=None,
                    help="--only observe / redis: also run this build of the app (the previous commit's)")
    ap.add_argument("--only", choices=["sqlite", "scale", "sweep", "stores", "galera", "observe",
                                       "redis"],
                    help="run only that pass (and its report)")
    ap.add_argument("--sweep-only", action="store_true",
                    help="run only the size sweep")
    ap.add_argument("--report-only", metavar="DIR",
                    help="re-render the report of an earlier run from DIR/results.json")
    args = ap.parse_args()
    if args.report_only:
        with open(os.path.join(args.report_only, "results.json")) as f:
            raw = json.load(f)
        old = argparse.Namespace(**raw["meta"]["args"])
        text = (report(old, raw["meta"], raw["throughput"], raw["counting"])
                + "\n\n### Goals\n\n"
                + goals(old, raw["throughput"], raw["counting"], raw["meta"]) + "\n")
        write(os.path.join(args.report_only, "report.md"), text)
        print(text)
        return
    args.db_pid = db_pid()
    if args.encrypt:
        # Read by our app only (the peers have no such option).
        os.environ["BENCH_ENCRYPTION_KEY"] = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = os.path.join(ROOT, "target", "bench", stamp)
    os.makedirs(out, exist_ok=True)
    latest = os.path.join(ROOT, "target", "bench", "latest")
    if os.path.islink(latest):
        os.unlink(latest)
    if not os.path.exists(latest):
        os.symlink(stamp, latest)

    rewrite = json.loads(subprocess.run([BIN, "--rewrite-bytes"], capture_output=True, text=True,
                                        check=True).stdout)
    meta = {"args": vars(args), "rewrite": rewrite, "started": stamp,
            "mariadb": sql("SELECT VERSION()").strip()}
    log("resetting %s* tables" % PREFIX)
    reset_tables()
    url = "mysql://%s@%s:%d/%s" % (DB["user"], DB["host"], DB["port"], DB["name"])
    if args.sweep_only:
        args.only = "sweep"
    if args.only:
        # One pass on its own: its report only.
        if args.only == "sweep":
            rows = size_sweep(args, out, url)
            text = sweep_report(rows) + "\n"
        elif args.only == "sqlite":
            text = sqlite_report(sqlite_pass(args, out)) + "\n"
        elif args.only == "stores":
            text = stores_report(stores_pass(args, out, url)) + "\n"
        elif args.only == "galera":
            text = galera_report(galera_pass(args, out, url)) + "\n"
        elif args.only == "observe":
            text = observe_report(observe_pass(args, out, url)) + "\n"
        elif args.only == "redis":
            text = redis_report(redis_pass(args, out)) + "\n"
        else:
            text = scale_report(scale_sweep(args, out, url)) + "\n"
        write(os.path.join(out, "report.md"), text)
        print(text)
        log("raw results in %s" % out)
        return
    s0 = status()
    s1 = status()
    meta["status_overhead"] = delta(s0, s1)
    app = App(args.port, url, args.pool, os.path.join(out, "app.log"))
    try:
        sessions = login_sessions(app.port, max(args.configs))
        log("throughput pass: %d connections, %d wrk threads, %d s per run after %d s warm-up"
            % (args.connections, args.threads, args.duration, args.warmup))
        thr = throughput_pass(args, out, app, sessions, sessions[0])
        log("interleaved floor ratios: %d x %d s slices per side" % (args.ratio_slices,
                                                                     args.ratio_secs))
        for cfg in args.configs:
            for route, r in interleaved(args, out, app, cfg).items():
                thr["%s/%d" % (route, cfg)]["interleaved"] = r
        if args.perf:
            meta["perf"] = profile(args, out, app, sessions)
    finally:
        app.stop()
    peer, sweep = {}, []
    if not args.no_peer:
        log("tower-sessions peer: the same routes and wrk settings")
        peer = peer_pass(args, out, url)
        if args.sizes:
            log("session-size sweep: %s cart items" % args.sizes)
            sweep = size_sweep(args, out, url)
    lite = {}
    if not args.no_sqlite:
        log("SQLite pass: ours beside rocket_flex_session, %d interleaved rounds"
            % args.sqlite_rounds)
        lite = sqlite_pass(args, out)
    log("counting pass: %d sequential requests per route through the counting proxy"
        % args.count)
    cnt = counting_pass(args, out, sessions)
    # The tables are recreated by every run; drop them now rather than leave
    # the leftover fresh sessions (about 1 GB) on the shared server.
    sql("DROP TABLE IF EXISTS `{p}session_index`, `{p}session_previous`, `{p}session_fields`, `{p}sessions`, `{p}floor`".format(p=PREFIX))
    scale = []
    if args.scales and not args.no_peer:
        log("scale sweep: %s live sessions" % args.scales)
        scale = scale_sweep(args, out, url)
    raw = {"meta": meta, "throughput": thr, "counting": cnt, "peer": peer, "sweep": sweep,
           "sqlite": lite, "scale": scale}
    write(os.path.join(out, "results.json"), json.dumps(raw, indent=2, sort_keys=True))
    text = report(args, meta, thr, cnt) + "\n\n### Goals\n\n" + goals(args, thr, cnt, meta) + "\n"
    if peer:
        text += "\n" + peer_report(args, thr, peer) + "\n"
    if sweep:
        text += "\n" + sweep_report(sweep) + "\n"
    if lite:
        text += "\n" + sqlite_report(lite) + "\n"
    if scale:
        text += "\n" + scale_report(scale) + "\n"
    write(os.path.join(out, "report.md"), text)
    print(text)
    log("raw results in %s" % out)


if __name__ == "__main__":
    main()
