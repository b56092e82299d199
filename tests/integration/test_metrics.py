# SPDX-License-Identifier: MIT
"""Prometheus metrics of a real daemon on a local spool.

One node with two slots runs three tasks that fetch a file:// resource file
and store an output file, and one task that fails.  Then:

- GET /metrics on the loopback endpoint (with curl) and the textfile
  (metrics.textfileDir/batchd.prom) both parse strictly as the text
  exposition format 0.0.4: HELP and TYPE once per family and before its
  samples, names and labels well formed, no series twice, histogram
  buckets cumulative with +Inf equal to _count; promtool checks them too
  when it is installed.
- The counters say what happened: task runs by result, the duration
  histogram, files and bytes both ways, polls, the node's state and slots.
- The endpoint's request reader is bounded: other methods get 405, other
  paths 404, garbage 400, an oversized head 431, a silent client is not
  waited for by the others, HEAD gets headers only.
- A second daemon that cannot listen on the same port refuses to start.
- After SIGTERM the textfile is written a last time, state offline.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BATCHD, Workspace, check, finish  # noqa: E402
from pool import Pool, wait_for  # noqa: E402

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(r"^(%s)(\{(?:%s)(?:,(?:%s))*\})? (\S+)$" % (NAME, LABEL, LABEL))
HELP = re.compile(r"^# HELP (%s) (.*)$" % NAME)
TYPE = re.compile(r"^# TYPE (%s) (counter|gauge|histogram|summary|untyped)$" % NAME)
VALUE = re.compile(r"^(?:[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?Inf|NaN)$")


def parse(text, what):
    """{(name, labels): float} of text, checked strictly; None if broken."""
    errors, series = [], {}
    helps, types, family_of_sample = {}, {}, None
    seen_families = []
    if not text.endswith("\n"):
        errors.append("does not end with a newline")
    for n, line in enumerate(text.splitlines(), 1):
        m = HELP.match(line)
        if m:
            if m.group(1) in helps:
                errors.append("line %d: second HELP of %s" % (n, m.group(1)))
            helps[m.group(1)] = m.group(2)
            continue
        m = TYPE.match(line)
        if m:
            name = m.group(1)
            if name in types:
                errors.append("line %d: second TYPE of %s" % (n, name))
            types[name] = m.group(2)
            seen_families.append(name)
            family_of_sample = name
            continue
        m = SAMPLE.match(line)
        if not m:
            errors.append("line %d: not a sample: %r" % (n, line))
            continue
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        if not VALUE.match(value):
            errors.append("line %d: bad value %r" % (n, value))
            continue
        base = name
        if family_of_sample and types.get(family_of_sample) == "histogram":
            base = re.sub(r"_(bucket|sum|count)$", "", name)
        if base != family_of_sample:
            errors.append("line %d: %s outside its family (TYPE first)" % (n, name))
        if base not in helps:
            errors.append("line %d: %s has no HELP" % (n, name))
        key = (name, labels)
        if key in series:
            errors.append("line %d: series %s%s twice" % (n, name, labels))
        series[key] = float(value)
    # Histograms: cumulative buckets, +Inf == _count.
    for fam, typ in types.items():
        if typ != "histogram":
            continue
        buckets = [(k[1], v) for k, v in series.items() if k[0] == fam + "_bucket"]
        les = [(float(re.search(r'le="([^"]+)"', lb).group(1).replace("+Inf", "inf")), v)
               for lb, v in buckets]
        les.sort()
        if not les or les[-1][0] != float("inf"):
            errors.append("%s: no +Inf bucket" % fam)
        elif any(les[i][1] > les[i + 1][1] for i in range(len(les) - 1)):
            errors.append("%s: buckets not cumulative" % fam)
        elif series.get((fam + "_count", "")) != les[-1][1]:
            errors.append("%s: +Inf bucket != _count" % fam)
    check(not errors, what + " parses as the text format", errors[:10])
    promtool = shutil.which("promtool")
    if promtool:
        p = subprocess.run([promtool, "check", "metrics"], input=text,
                           capture_output=True, text=True)
        check(p.returncode == 0, what + ": promtool check metrics", p.stdout + p.stderr)
    return series


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def curl(url, *extra):
    # Bytes, decoded here: text mode would turn the head's CRLF into LF.
    p = subprocess.run(["curl", "-sS", "-D", "-", *extra, url],
                       capture_output=True, timeout=30)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def raw(port, data, read_timeout=15):
    """Sends data; returns what the server answered before it closed."""
    s = socket.create_connection(("127.0.0.1", port), timeout=read_timeout)
    try:
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
        return out.decode(errors="replace")
    finally:
        s.close()


def get(series, name, labels=""):
    return series.get((name, labels))


with Workspace() as ws:
    port = free_port()
    tdir = os.path.join(ws.dir, "textfile")
    os.makedirs(tdir)
    prom = os.path.join(tdir, "batchd.prom")
    data = ws.write("in/data.bin", b"x" * 12345)
    out_c = "file://" + ws.dir + "/outputs"
    metrics_cfg = {"textfileDir": tdir, "listen": "127.0.0.1:%d" % port, "interval": "PT1S"}
    pool = Pool(ws, nodes=1, slots=2, extra={"metrics": metrics_cfg})
    pool.start()
    try:
        url = "http://127.0.0.1:%d/metrics" % port
        check(wait_for(lambda: curl(url)[0] == 0, 60), "the endpoint answers", curl(url))
        check(os.path.exists(prom), "the textfile exists at start")

        rc, out, err = pool.cli("job", "add", ws.write_json("job.json", {"id": "m"}))
        check(rc == 0, "job add", err)
        tasks = [{"id": "ok%d" % i,
                  "commandLine": "/bin/sh -c 'wc -c < in.bin > out.txt'",
                  "resourceFiles": [{"httpUrl": "file://" + data, "filePath": "in.bin"}],
                  "outputFiles": [{"filePattern": "out.txt",
                                   "destination": {"container": {"containerUrl": out_c,
                                                                 "path": "ok%d.txt" % i}},
                                   "uploadOptions": {"uploadCondition": "taskCompletion"}}]}
                 for i in range(3)]
        tasks.append({"id": "bad", "commandLine": "/bin/sh -c 'exit 3'"})
        rc, out, err = pool.cli("task", "add", "m", ws.write_json("tasks.json", tasks))
        check(rc == 0, "task add", err)
        rc, out, err = pool.cli("wait", "m", "--timeout", "PT3M", timeout=240)
        check(rc in (0, 1), "wait for the job's tasks", (rc, out, err))
        # The node goes idle once the last assignment has reported.
        check(wait_for(lambda: 'batchd_node_state{state="idle"} 1' in curl(url)[1], 30),
              "the node is idle again")

        rc, head_body, err = curl(url)
        check(rc == 0 and head_body.startswith("HTTP/1.1 200"), "GET /metrics: 200", head_body[:200])
        head, _, body = head_body.partition("\r\n\r\n")
        check("Content-Type: text/plain; version=0.0.4" in head, "content type of the format", head)
        s = parse(body, "the endpoint")
        check(get(s, "batchd_task_runs_total", '{result="success"}') == 3, "3 runs succeeded",
              get(s, "batchd_task_runs_total", '{result="success"}'))
        check(get(s, "batchd_task_runs_total", '{result="failure"}') == 1, "1 run failed",
              get(s, "batchd_task_runs_total", '{result="failure"}'))
        check(get(s, "batchd_tasks_completed_total") == 4, "4 tasks completed",
              get(s, "batchd_tasks_completed_total"))
        check(get(s, "batchd_tasks_started_total") == 4, "4 tasks started")
        check(get(s, "batchd_task_duration_seconds_count") == 4, "4 durations observed")
        check(get(s, "batchd_download_files_total") == 3, "3 resource files fetched",
              get(s, "batchd_download_files_total"))
        check(get(s, "batchd_download_bytes_total") == 3 * 12345, "their bytes",
              get(s, "batchd_download_bytes_total"))
        check(get(s, "batchd_download_errors_total") == 0, "no download error")
        check(get(s, "batchd_upload_files_total") == 3, "3 output files stored",
              get(s, "batchd_upload_files_total"))
        check(get(s, "batchd_upload_bytes_total") == 3 * len("12345\n"), "their bytes",
              get(s, "batchd_upload_bytes_total"))
        check((get(s, "batchd_queue_polls_total") or 0) >= 1, "queue polls counted")
        check(get(s, "batchd_queue_messages_total") == 4, "4 messages received")
        check(get(s, "batchd_task_slots") == 2 and get(s, "batchd_task_slots_used") == 0,
              "slots: 2, none used")
        check(get(s, "batchd_tasks_running") == 0, "no task running")
        check(get(s, "batchd_build_info", '{version="0.1.0",pool="testpool",node="node1"}') == 1
              or any(k[0] == "batchd_build_info" and 'node="node1"' in k[1] for k in s),
              "build info names pool and node")

        # A task that fails to fetch its resource file counts a download error.
        rc, out, err = pool.cli("task", "add", "m", ws.write_json("nofile.json", {
            "id": "nofile", "commandLine": "/bin/true",
            "resourceFiles": [{"httpUrl": "file://" + ws.dir + "/missing", "filePath": "x"}]}))
        pool.cli("wait", "m", "--timeout", "PT2M", timeout=200)
        check(wait_for(lambda: "batchd_download_errors_total 1\n" in curl(url)[1], 30),
              "a failed resource file counts a download error")

        # The textfile follows within its interval.
        def textfile():
            with open(prom) as f:
                return f.read()
        check(wait_for(lambda: "batchd_download_errors_total 1\n" in textfile(), 30),
              "the textfile is rewritten")
        t = parse(textfile(), "the textfile")
        check(get(t, "batchd_task_runs_total", '{result="success"}') == 3, "textfile: 3 runs succeeded")
        check([f for f in os.listdir(tdir) if f != "batchd.prom"] == [],
              "no temporary file is left in the textfile directory", os.listdir(tdir))

        # The request reader.
        r = raw(port, b"POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        check(r.startswith("HTTP/1.1 405") and "Allow: GET, HEAD" in r, "POST: 405", r[:100])
        r = raw(port, b"GET /other HTTP/1.1\r\n\r\n")
        check(r.startswith("HTTP/1.1 404"), "another path: 404", r[:100])
        r = raw(port, b"hello there\r\n\r\n")
        check(r.startswith("HTTP/1.1 400"), "garbage: 400", r[:100])
        r = raw(port, b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * 10000 + b"\r\n\r\n")
        check(r.startswith("HTTP/1.1 431"), "an oversized head: 431", r[:100])
        r = raw(port, b"HEAD /metrics HTTP/1.0\r\n\r\n")
        check(r.startswith("HTTP/1.1 200") and r.endswith("\r\n\r\n"), "HEAD: headers only", r[-100:])
        r = raw(port, b"GET /metrics?x=1 HTTP/1.1\r\n\r\n")
        check(r.startswith("HTTP/1.1 200") and "batchd_node_state" in r, "a query is ignored")
        # A client that connects and says nothing does not hold up others.
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
        t0 = time.monotonic()
        rc, out, err = curl(url)
        check(rc == 0 and time.monotonic() - t0 < 5, "silent clients do not block a scrape")
        for c in idle:
            c.close()

        # A second daemon cannot have the port: it says so and exits.
        other = Pool(ws, nodes=1, extra={"metrics": {"listen": "127.0.0.1:%d" % port}})
        name, path = other.configs[0]
        p = subprocess.run([BATCHD, "daemon", "--config", path], capture_output=True,
                           text=True, timeout=60, env=dict(os.environ, BATCHD_NODE="x"))
        check(p.returncode == 1 and "cannot listen on 127.0.0.1:%d" % port in p.stderr,
              "a taken port: the daemon does not start", (p.returncode, p.stderr[-300:]))
        # A textfile directory that does not exist: the same.
        bad = ws.write_json("badtf.json", {"spoolDir": os.path.join(ws.dir, "spool2"),
                                           "stateDir": os.path.join(ws.dir, "st2"),
                                           "nodeRoot": os.path.join(ws.dir, "r2"),
                                           "metrics": {"textfileDir": ws.dir + "/nope"}})
        p = subprocess.run([BATCHD, "daemon", "--config", bad], capture_output=True,
                           text=True, timeout=60)
        check(p.returncode == 1 and "metrics: cannot write " in p.stderr,
              "a missing textfile directory: the daemon does not start",
              (p.returncode, p.stderr[-300:]))
    finally:
        status = pool.stop()
    check(status == {"node1": 0}, "the daemon stops cleanly", status)
    t = parse(open(prom).read(), "the last textfile")
    check(get(t, "batchd_node_state", '{state="offline"}') == 1, "the last textfile says offline")
    print(pool.log("node1")[-2000:] if status != {"node1": 0} else "")
finish()
