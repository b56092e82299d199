#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The pool on the local spool: throughput, submit-to-start latency and the
cost of an idle node, each against its baseline, in one run.

    tests/bench/bench_pool.py [BATCHD] [--only=throughput,idle,latency,azure]
    TMPDIR=/dev/shm tests/bench/bench_pool.py [BATCHD]   (spool on tmpfs)
    BENCH_TASKS='{"cgroups": false}' BENCH_ONLY=throughput \
        tests/bench/bench_pool.py [BATCHD]

BENCH_TASKS (a JSON object) becomes the "tasks" section of every node's
configuration (part 1 then runs batchd once per round, with it, instead
of with cgroups off and on); BENCH_ONLY=throughput runs part 1 only.

Everything lives in a temporary directory under $TMPDIR (else /tmp) that
is removed at the end: the spoolDir, stateDir and nodeRoot of every node.
About 4 minutes.  Needs strace.

1. Throughput.  2,000 tasks of /bin/true are added to a job while no node
   runs; then one node with taskSlotsPerNode 2 and pollMinInterval PT0.01S
   starts: once with task cgroups off and once on (tasks.cgroups), so that
   the cost of containment shows as a ratio in the same run (the per-task
   supervisor runs in both), interleaved with the baseline, BENCH_REPS
   rounds (default 3), medians printed.  Measured: from the first task's startTime (the daemon picked it
   up) to `batchd wait` returning, and from the first startTime to the last
   endTime (the rows' own times, free of wait's polling).  Baseline, in the
   same run: `xargs -P2` running sh -c 'mkdir D; cd D; true >stdout.txt
   2>stderr.txt' for 2,000 distinct directories.

2. Submit-to-start latency.  Tasks added one at a time to an idle node:
   the time from `task add` returning to the task's executionInfo.startTime
   (`batchd task show --json`), median and p99.  With a short
   pollMaxInterval (PT0.1S): 100 tasks to one node, 0.3 to 0.4 s apart.
   With the default pollMaxInterval (PT30S) an idle node takes up to 30 s
   per task and needs ~51 s of idleness to back off fully, so 100 tasks in
   a row would take an hour: instead 100 nodes, each in its own pool, sit
   idle for the minute of part 3 and then get one task each, added one at
   a time, spread evenly over one 30 s poll period.

3. Idle node (default configuration).  Node 0 of those 100: VmRSS after
   60 s (/proc/PID/status) and utime+stime over those 60 s (/proc/PID/
   stat).  Node 1 runs under `strace -f -y` for the same minute to count
   the storage operations: every local-spool operation is one job on
   libuv's thread pool that ends with a write to the loop's eventfd; one
   that touched a file under tables/ is a table write (heartbeat), every
   other one is a queue receive (a receive that finds an unchanged, empty
   view does no I/O at all, so counting directory reads would miss it).
   Extrapolated per hour from the steady poll interval.

4. Azurite (see azure()): storage transactions of an idle node per hour,
   counted from Azurite's own request log, and submit-to-start latency
   with pollMaxInterval PT0.1S.  Needs Node.js and the Azurite packages
   (BATCHD_TEST_NODE_DIR, as the tests).
"""
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
args = [a for a in sys.argv[1:] if not a.startswith("--only=")]
ONLY = next((a.split("=", 1)[1].split(",") for a in sys.argv[1:]
             if a.startswith("--only=")),
            os.environ["BENCH_ONLY"].split(",") if os.environ.get("BENCH_ONLY") else None)
batchd = os.path.abspath(args[0] if args else
                         os.path.join(here, "../../build/agent/batchd"))
NTASKS = 2000
NLAT = 100
NLAT_AZ = 50
IDLE_S = 60
CLK_TCK = os.sysconf("SC_CLK_TCK")

tmp = tempfile.mkdtemp(prefix="batchd-bench-pool-")
procs = []


def config(name, **queue):
    """Writes the configuration of node NAME (its own pool) and returns its path."""
    d = os.path.join(tmp, name)
    os.makedirs(d, exist_ok=True)
    c = {"poolId": "p" + name, "nodeId": name, "taskSlotsPerNode": 2,
         "spoolDir": d + "/spool", "stateDir": d + "/state",
         "nodeRoot": d + "/root", "log": {"level": "warning"}}
    if queue:
        c["queue"] = queue
    if os.environ.get("BENCH_TASKS"):
        c["tasks"] = json.loads(os.environ["BENCH_TASKS"])
    path = d + "/config.json"
    with open(path, "w") as f:
        json.dump(c, f)
    return path


def bd(*args, check=True):
    r = subprocess.run([batchd] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    if check and r.returncode != 0:
        sys.exit("batchd %s: status %d: %s" % (" ".join(args[:2]),
                                               r.returncode, r.stderr.strip()))
    return r


def daemon(cfg):
    p = subprocess.Popen([batchd, "daemon", "--config", cfg],
                         stdout=subprocess.DEVNULL,
                         stderr=open(cfg + ".log", "w"))
    procs.append(p)
    return p


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def iso(s):
    """Seconds since the epoch of an ISO 8601 UTC time with milliseconds."""
    t = time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")
    frac = float("0" + s[19:].rstrip("Z")) if len(s) > 20 else 0.0
    return float(__import__("calendar").timegm(t)) + frac


def add_job(cfg, job):
    path = os.path.join(tmp, job + ".json")
    with open(path, "w") as f:
        json.dump({"id": job}, f)
    bd("job", "add", "--config", cfg, path)


def add_task(cfg, job, tid):
    """Adds one task; returns (time before, time after) the command."""
    path = os.path.join(tmp, "task-%s.json" % tid)
    with open(path, "w") as f:
        json.dump({"id": tid, "commandLine": "/bin/true"}, f)
    t0 = time.time()
    bd("task", "add", "--config", cfg, job, path)
    return t0, time.time()


def start_time(cfg, job, tid, timeout=60):
    """The task's executionInfo.startTime, waiting until it has one."""
    end = time.time() + timeout
    while True:
        t = json.loads(bd("task", "show", "--json", "--config", cfg, job,
                          tid).stdout)
        st = t.get("executionInfo", {}).get("startTime")
        if st:
            return iso(st)
        if time.time() > end:
            sys.exit("task %s of %s did not start in %d s" % (tid, cfg, timeout))
        time.sleep(0.2)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def cpu_s(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / CLK_TCK	# utime, stime


def run_ns(pid):
    """CPU time of all the process's threads in ns (schedstat, finer than ticks)."""
    tot = 0
    for t in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/schedstat" % (pid, t)) as f:
            tot += int(f.read().split()[0])
    return tot


def tree_cpu_s(pid):
    """utime, stime and the reaped children's of pid and of its live
    children, in s (0 for what has gone meanwhile)."""
    try:
        g = open("/proc/%s/stat" % pid).read().rsplit(")", 1)[1].split()
        kids = open("/proc/%s/task/%s/children" % (pid, pid)).read().split()
    except OSError:
        return 0.0
    return sum(int(x) for x in g[11:15]) / CLK_TCK + \
        sum(tree_cpu_s(c) for c in kids)


def rss_kb(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def throughput_run(name, tasks_cfg):
    """One node runs NTASKS tasks of /bin/true; returns (s to wait
    returning, s to the last end, daemon CPU s, children CPU s)."""
    cfg = config(name, pollMinInterval="PT0.01S", pollMaxInterval="PT1S")
    if tasks_cfg is not None:
        with open(cfg) as f:
            c = json.load(f)
        c["tasks"] = dict(c.get("tasks", {}), **tasks_cfg)
        with open(cfg, "w") as f:
            json.dump(c, f)
    add_job(cfg, "j")
    path = os.path.join(tmp, name + "-tasks.json")
    with open(path, "w") as f:
        json.dump([{"id": "t%d" % i, "commandLine": "/bin/true"}
                   for i in range(NTASKS)], f)
    bd("task", "add", "--config", cfg, "j", path)
    p = daemon(cfg)
    r = bd("wait", "--config", cfg, "j", check=False)
    waited = time.time()
    f = open("/proc/%d/stat" % p.pid).read().rsplit(")", 1)[1].split()
    own = (int(f[11]) + int(f[12])) / CLK_TCK
    kids = (int(f[13]) + int(f[14])) / CLK_TCK
    # The supervisors are the spawner's children (docs/protocol.md §8):
    # its own time and theirs count as the supervisors' too, the ended
    # ones' through its reaped children's fields and the live ones (its
    # workers, which supervise task after task) through their own four.
    for c in open("/proc/%d/task/%d/children" % (p.pid, p.pid)).read().split():
        kids += tree_cpu_s(c)
    stop(p)
    if r.returncode != 0:
        sys.exit("batchd wait: status %d: %s" % (r.returncode, r.stderr))
    starts, ends = [], []
    rows = os.path.join(tmp, name, "spool/tables/batchdtasks/j")
    for row in os.listdir(rows):
        with open(os.path.join(rows, row)) as f:
            props = json.load(f)["props"]
        starts.append(iso(props["startTime"]))
        ends.append(iso(props["endTime"]))
    first = min(starts)
    return waited - first, max(ends) - first, own, kids


def xargs_run(name):
    xd = os.path.join(tmp, name)
    os.makedirs(xd)
    names = "".join("d%d\n" % i for i in range(NTASKS))
    t0 = time.time()
    subprocess.run(["xargs", "-P2", "-n1", "sh", "-c",
                    'mkdir "$1"; cd "$1"; true >stdout.txt 2>stderr.txt', "sh"],
                   input=names, text=True, cwd=xd, check=True)
    return time.time() - t0


def throughput():
    """xargs, then batchd with task cgroups off and on (tasks.cgroups;
    BENCH_TASKS, when set, is the only batchd run), interleaved, median of
    BENCH_REPS (default 3) rounds."""
    reps = int(os.environ.get("BENCH_REPS", "3"))
    kinds = [("env", None)] if os.environ.get("BENCH_TASKS") else \
        [("off", {"cgroups": False}), ("on", {"cgroups": True})]
    xs, res = [], {k: [] for k, _ in kinds}
    for rep in range(reps):
        xs.append(xargs_run("xargs%d" % rep))
        for k, cfg in kinds:
            res[k].append(throughput_run("tp-%s%d" % (k, rep), cfg))
    x_s = statistics.median(xs)
    print("== throughput: %d tasks of /bin/true, 1 node, 2 slots, median of %d, "
          "load %s" % (NTASKS, reps, open("/proc/loadavg").read().split()[0]))
    print("xargs -P2 (mkdir, cd, true >stdout.txt):       %7.1f tasks/s (%.2f s)"
          % (NTASKS / x_s, x_s))
    ends = {}
    for k, _ in kinds:
        w_s = statistics.median(r[0] for r in res[k])
        e_s = ends[k] = statistics.median(r[1] for r in res[k])
        own = statistics.median(r[2] for r in res[k]) / NTASKS * 1e3
        kids = statistics.median(r[3] for r in res[k]) / NTASKS * 1e3
        print("batchd, cgroups %-3s: %7.1f tasks/s to wait returning, %7.1f to the "
              "last end; CPU per task: daemon %.2f ms, supervisors and tasks %.2f ms"
              % (k, NTASKS / w_s, NTASKS / e_s, own, kids))
        print("  ratio batchd/xargs: %.2fx (to wait returning), %.2fx (to last end)"
              % (x_s / w_s, x_s / e_s))
    if "on" in ends:
        print("containment: cgroups on / off, tasks per second to the last end: %.2fx"
              % (ends["off"] / ends["on"]))
    print()


def report_latency(title, lat):
    ms = [x * 1e3 for x in lat]
    print("%s: %d tasks: median %.0f ms, p99 %.0f ms, min %.0f ms, max %.0f ms"
          % (title, len(ms), statistics.median(ms), pct(ms, 99), min(ms), max(ms)))


def latency_short():
    cfg = config("lat", pollMinInterval="PT0.01S", pollMaxInterval="PT0.1S")
    p = daemon(cfg)
    add_job(cfg, "j")
    time.sleep(0.5)
    times = []
    for i in range(NLAT):
        times.append(add_task(cfg, "j", "t%d" % i))
        time.sleep(0.3 + random.random() * 0.1)
    lat = [start_time(cfg, "j", "t%d" % i) - times[i][1] for i in range(NLAT)]
    adds = [b - a for a, b in times]
    stop(p)
    print("== submit-to-start latency (from task add returning to startTime)")
    print("task add itself: median %.0f ms" % (statistics.median(adds) * 1e3))
    report_latency("pollMaxInterval PT0.1S", lat)


def idle_and_latency_default():
    cfgs = [config("idle%d" % i) for i in range(NLAT)]
    ps = [daemon(c) for c in cfgs[:2]]
    born = time.time()	# node 1 started
    ps += [daemon(c) for c in cfgs[2:]]
    for c in cfgs:
        add_job(c, "j")
    time.sleep(1)	# the daemons have joined
    p0, p1 = ps[0], ps[1]
    trace = os.path.join(tmp, "strace.txt")
    traced = time.time() - born
    st = subprocess.Popen(["strace", "-f", "-y", "-ttt", "-qq", "-o", trace,
                           "-e", "trace=openat,renameat,renameat2,unlinkat,"
                           "fsync,fdatasync,write,read,getdents64",
                           "-p", str(p1.pid)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    c0, n0 = cpu_s(p0.pid), run_ns(p0.pid)
    time.sleep(IDLE_S)
    cpu, ns = cpu_s(p0.pid) - c0, run_ns(p0.pid) - n0
    rss = rss_kb(p0.pid)
    st.send_signal(signal.SIGINT)
    st.wait()

    # One thread-pool job = the syscalls of a worker thread up to its
    # write of 8 bytes to the loop's eventfd.
    pending, polls, writes = {}, [], []
    ev = re.compile(r'^(\d+)\s+(\S+) write\(\d+<anon_inode:\[eventfd\]>, "\\1\\0')
    for line in open(trace):
        m = ev.match(line)
        if m:
            tid, ts = m.group(1), m.group(2)
            body = pending.pop(tid, "")
            (writes if "/tables/" in body else polls).append(ts)
            continue
        tid = line.split(None, 1)[0]
        pending[tid] = pending.get(tid, "") + line

    at = ", ".join("%.1f" % (float(t) - born) for t in polls) or "-"
    wat = ", ".join("%.1f" % (float(t) - born) for t in writes) or "-"
    print("== idle node, default configuration (pollMaxInterval PT30S)")
    print("VmRSS after %d s: %.1f MiB" % (IDLE_S + 1, rss / 1024.0))
    print("CPU over %d s: utime+stime %.2f s; schedstat %.1f ms (%.4f%% of one CPU)"
          % (IDLE_S, cpu, ns / 1e6, 100.0 * ns / 1e9 / IDLE_S))
    print("queue receives in %d s (strace of a twin node from %.1f s after its "
          "start): %d, at s %s" % (IDLE_S, traced, len(polls), at))
    print("table operations (heartbeat) in %d s: %d, at s %s" % (IDLE_S, len(writes), wat))
    print("per idle hour once backed off (a receive and a heartbeat every 30 s): "
          "%d storage transactions" % (3600 / 30 * 2))
    print()

    order = list(range(NLAT))
    random.shuffle(order)
    # The nodes started together, so they poll in step, every 30 s by now:
    # the adds are spread evenly over one 30 s period, so that the moment of
    # an add is uniform in the nodes' poll cycle.
    added = {}
    t0 = time.time()
    for k, i in enumerate(order):
        delay = t0 + (k + random.random()) * 30.0 / NLAT - time.time()
        if delay > 0:
            time.sleep(delay)
        added[i] = add_task(cfgs[i], "j", "t")
    lat = [start_time(cfgs[i], "j", "t") - added[i][1] for i in order]
    for p in ps:
        p.send_signal(signal.SIGTERM)
    for p in ps:
        stop(p)
    return lat


def azure():
    """Part 4: one node on Azurite's queue and tables (tests/lib/azurite-
    harness.sh; Node.js packages from $BATCHD_TEST_NODE_DIR).  Idle storage
    transactions: every request Azurite answers (one "End response" line in
    its debug log each) while a node with the default configuration sits
    idle, counted over IDLE_S seconds after it had IDLE_S seconds to back
    off.  Then submit-to-start latency with pollMaxInterval PT0.1S, as in
    part 2 but NLAT_AZ tasks."""
    sys.path.insert(0, os.path.join(here, "..", "integration"))
    from harness import AZURITE_ACCOUNT, AZURITE_KEY, Azurite

    class Where:
        dir = os.path.join(tmp, "azurite-ws")
    os.makedirs(Where.dir)
    az = Azurite(Where)
    try:
        with open(os.path.join(az.dir, "ports")) as f:
            bp, qp, tp = (int(x) for x in f.read().split())
        conn = ("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;"
                "BlobEndpoint=http://127.0.0.1:%d/%s;QueueEndpoint=http://127.0.0.1:%d/%s;"
                "TableEndpoint=http://127.0.0.1:%d/%s;" % (
                    AZURITE_ACCOUNT, AZURITE_KEY, bp, AZURITE_ACCOUNT, qp,
                    AZURITE_ACCOUNT, tp, AZURITE_ACCOUNT))

        def az_config(name, **queue):
            path = config(name, **queue)
            with open(path) as f:
                c = json.load(f)
            c["storage"] = {"connectionString": conn}
            with open(path, "w") as f:
                json.dump(c, f)
            return path

        cfg = az_config("azidle")
        p = daemon(cfg)
        time.sleep(IDLE_S)
        s0 = az.debug_log_size()
        c0, n0 = cpu_s(p.pid), run_ns(p.pid)
        time.sleep(IDLE_S)
        cpu, ns = cpu_s(p.pid) - c0, run_ns(p.pid) - n0
        rss = rss_kb(p.pid)
        time.sleep(2)	# Azurite writes its log a little late
        n = az.debug_log(s0).count("End response")
        stop(p)
        print("== Azurite: idle node, default configuration (pollMaxInterval PT30S)")
        print("storage transactions in %d s after %d s idle: %d -> %d per idle hour"
              % (IDLE_S, IDLE_S, n, n * 3600 // IDLE_S))
        print("VmRSS %.1f MiB (the HTTP client is loaded); CPU over %d s: %.1f ms"
              % (rss / 1024.0, IDLE_S, ns / 1e6))

        cfg = az_config("azlat", pollMinInterval="PT0.01S", pollMaxInterval="PT0.1S")
        p = daemon(cfg)
        add_job(cfg, "j")
        time.sleep(1)
        times = []
        for i in range(NLAT_AZ):
            times.append(add_task(cfg, "j", "t%d" % i))
            time.sleep(0.3 + random.random() * 0.1)
        lat = [start_time(cfg, "j", "t%d" % i) - times[i][1] for i in range(NLAT_AZ)]
        stop(p)
        print("task add itself (to Azurite): median %.0f ms"
              % (statistics.median([b - a for a, b in times]) * 1e3))
        report_latency("Azurite, pollMaxInterval PT0.1S", lat)
        print()
    finally:
        az.stop()


def main():
    if shutil.which("strace") is None:
        sys.exit("strace is not installed (apt-get install strace)")
    print("batchd: %s (%s)" % (batchd, bd("version").stdout.strip()))
    print("machine: %d CPUs, %s" % (os.cpu_count(), next(
        (l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
         if l.startswith("model name")), "?")))
    print("date: %s" % time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()))
    print()
    if ONLY is None or "throughput" in ONLY:
        throughput()
    if ONLY is None or "idle" in ONLY:
        lat_default = idle_and_latency_default()
    if ONLY is None or "latency" in ONLY:
        latency_short()
    if ONLY is None or "azure" in ONLY:
        azure()
    if ONLY is None or "idle" in ONLY:
        report_latency("pollMaxInterval PT30S (default), 1 task to each of %d idle nodes"
                       % NLAT, lat_default)


try:
    main()
finally:
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    shutil.rmtree(tmp, ignore_errors=True)
