#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Installing an application package against `bsdtar -xf`, in one run.

    tests/bench/bench_app_package.py [BATCHD...]

Makes a 200 MiB zip of 5,000 files of random bytes in a local application
store, then, in rounds (BENCH_RUNS, default 5), each of these in turn:
`bsdtar -xf` into a fresh directory; the same followed by `sync -f`
(batchd makes a package durable before it renames it into place); and,
for each BATCHD given (default build/agent/batchd), `batchd run` of a task
that references the package, on a fresh node root, timed by batchd's own
"installed ... in X s" line (resolve, unpack off the loop, sync, rename)
and as a whole.  Between two timed runs the previous output is removed
and the file system synced, untimed, so that no run pays for the
writeback or the deletion of another.  The archive is in the page cache
for every run.  Prints the medians, the ratios and the load averages;
the aim is within 10% of bsdtar.
"""
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile

here = os.path.dirname(os.path.abspath(__file__))
binaries = sys.argv[1:] or [os.path.join(here, "../../build/agent/batchd")]
if shutil.which("bsdtar") is None:
    sys.exit("bsdtar is not installed (apt-get install libarchive-tools)")

FILES, TOTAL = 5000, 200 << 20
RUNS = int(os.environ.get("BENCH_RUNS", "5"))


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def settle(path):
    """Removes path and syncs its file system, outside the timings."""
    if os.path.exists(path):
        shutil.rmtree(path)
    subprocess.run(["sync", "-f", tmp], check=True)


tmp = tempfile.mkdtemp(prefix="batchd-bench-", dir="/var/tmp")
try:
    store = os.path.join(tmp, "store")
    os.makedirs(os.path.join(store, "bench"))
    archive = os.path.join(store, "bench", "1.zip")
    size = TOTAL // FILES
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for i in range(FILES):
            z.writestr("d%02d/f%05d.bin" % (i % 50, i), os.urandom(size))
    cfg = os.path.join(tmp, "batchd.json")
    with open(cfg, "w") as f:
        json.dump({"applicationStore": {"directory": store},
                   "spoolDir": os.path.join(tmp, "spool")}, f)
    task = os.path.join(tmp, "task.json")
    with open(task, "w") as f:
        json.dump({"id": "t", "commandLine": "/bin/true",
                   "applicationPackageReferences": [{"applicationId": "bench", "version": "1"}]}, f)
    subprocess.run(["cat", archive], stdout=subprocess.DEVNULL, check=True)

    names = {b: (os.path.basename(b) if len(binaries) > 1 else "batchd") for b in binaries}
    times = {"bsdtar -xf": [], "bsdtar -xf + sync -f": []}
    for b in binaries:
        times["%s install" % names[b]] = []
        times["%s run (whole)" % names[b]] = []
    load_before = loadavg()
    settle(os.path.join(tmp, "none"))
    for n in range(RUNS):
        for sync in (False, True):
            d = os.path.join(tmp, "x%d%d" % (n, sync))
            os.makedirs(d)
            t0 = time.monotonic()
            subprocess.run(["bsdtar", "-xf", archive, "-C", d], check=True)
            if sync:
                subprocess.run(["sync", "-f", d], check=True)
            times["bsdtar -xf + sync -f" if sync else "bsdtar -xf"].append(time.monotonic() - t0)
            settle(d)
        for b in binaries:
            root = os.path.join(tmp, "root%d" % n)
            t0 = time.monotonic()
            p = subprocess.run([b, "run", "--quiet", "--root", root, "--config", cfg, task],
                               capture_output=True, text=True)
            times["%s run (whole)" % names[b]].append(time.monotonic() - t0)
            m = re.search(r"installed in .*? in ([0-9.]+) s", p.stderr)
            if p.returncode != 0 or m is None:
                sys.exit("batchd run failed: " + p.stderr[-2000:])
            times["%s install" % names[b]].append(float(m.group(1)))
            settle(root)
    base = statistics.median(times["bsdtar -xf"])
    synced = statistics.median(times["bsdtar -xf + sync -f"])
    print("%d files, %d MiB, %d rounds (medians); load average %s before, %s after:"
          % (FILES, TOTAL >> 20, RUNS, load_before, loadavg()))
    for k, v in times.items():
        med = statistics.median(v)
        print("  %-34s %7.3f s   %.2fx bsdtar   %.2fx bsdtar+sync   (runs: %s)"
              % (k, med, med / base, med / synced, " ".join("%.2f" % x for x in v)))
finally:
    shutil.rmtree(tmp, ignore_errors=True)
