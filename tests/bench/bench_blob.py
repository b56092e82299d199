#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Blob transfers of `batchd run` against other clients, in one run.

    tests/bench/bench_blob.py [BATCHD]
    BENCH_REPS=5 BENCH_ONLY=nginx,azurite,memory tests/bench/bench_blob.py
    BENCH_ONLY=azurite-small tests/bench/bench_blob.py   (only the 500-file rows;
                                                          azurite-small-down: their
                                                          downloads; azurite-big:
                                                          the 256 MiB ones)
    BENCH_BATCHD_B=build-a/agent/batchd ...   (a second batchd in the 500-file race)
    BENCH_TIMELINE=1 ...   (then one run of each under strace: when each step came)

Every figure is the median of BENCH_REPS runs (3) of a whole `batchd run`
of a task whose resourceFiles or outputFiles do the transfer (process
start and task included), against its
baselines measured in the same run, batchd and baseline taking turns.  A
global `sync` comes before every timed run so that the writeback of the
previous one does not land on the next.  Everything lives in a temporary
directory under $TMPDIR (else /tmp), removed at the end.  Needs nginx,
curl, aria2c, /usr/bin/time, node and Azurite's node_modules (found as
tests/lib/azurite-harness.sh finds them: set BATCHD_TEST_NODE_DIR, e.g.
to build/node, or it installs them into tests/lib/node).

1. nginx on loopback (tests/lib/nginx-harness.sh), one 1 GiB file:
   batchd (httpUrl) against `curl -o`; and the same plus the fsync of the
   file (`sync FILE`), which batchd does before it renames a download into
   place.  Aim: at least as fast as curl.
2. nginx with `limit_rate 50m` per connection (the harness's /slow/):
   batchd's parallel ranged download (8 MiB ranges, 8 at once) against
   `aria2c -x8 -s8`.  Aim: at least as fast as aria2c.
3. Azurite (started here without its debug log or access log, and
   keeping blobs in memory: BENCH_AZURITE_DISK=1 keeps them in files under
   $TMPDIR as before), a 256 MiB blob and 500
   blobs of 4 KiB, down (storageContainerUrl + blobPrefix, SAS) and up
   (outputFiles to a container SAS URL; the task hard-links the files into
   its working directory): batchd against the official JavaScript SDK
   (@azure/storage-blob) doing the same with 8 operations in parallel
   (downloadToBuffer / uploadFile with concurrency 8 for the big blob, a
   pool of 8 downloadToFile / uploadFile for the small ones); the SDK is
   timed inside node, after its start-up, batchd as a whole process.  The
   500-file download also against `curl --parallel --parallel-max 8` given
   the 500 URLs (it does not list), which batchd is given too, as 500
   httpUrl resource files: the same work; and against curl that lists
   first (one List Blobs, its names made into curl's config, then the
   same parallel GETs), the same work as batchd's listing form.  BENCH_WARMUP untimed rounds
   (3) of the four come first (Azurite is slow until node has compiled
   its hot paths), then BENCH_REPS rounds, in the other order every
   second round.  Besides the medians, the ratio within each round
   (paired: runs next to each other in time, spared the drift of the
   machine's other load) is printed as median and range, and so is
   Azurite's own CPU time per run: one node thread serves every client,
   so that is what bounds them.  With BENCH_BATCHD_B a second batchd
   binary runs both forms in each round too, for an A/B comparison on
   the same Azurite.  Aim: faster than the SDK, at least as fast as curl.
   With BENCH_TIMELINE=1, one more run of batchd (both forms) and of curl
   under `strace --seccomp-bpf` (only the traced calls stop the process)
   prints when each step came, in ms from the exec: libcurl and OpenSSL
   loaded, first connection, first and last file created, first and last
   rename into place, the ownership walk of the task directory, the
   command's exec and the exit.  strace slows what it traces (each file's
   open and rename), so compare the steps, not the totals.
4. Memory: the max RSS (/usr/bin/time's %M) of `batchd run`
   downloading the 1 GiB file from nginx, and a 1 GiB blob with its
   Content-MD5 from Azurite, against the same run for a 4 KiB file or
   blob.  Aim: a few MiB more at most.
"""
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
lib = os.path.join(here, "../lib")
batchd = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                         os.path.join(here, "../../build/agent/batchd"))
REPS = int(os.environ.get("BENCH_REPS", "3"))
ONLY = set(os.environ.get("BENCH_ONLY", "nginx,azurite,memory").split(","))
DISK = os.environ.get("BENCH_AZURITE_DISK", "") not in ("", "0")
WARMUP = int(os.environ.get("BENCH_WARMUP", "3"))
BATCHD_B = os.environ.get("BENCH_BATCHD_B")
TIMELINE = os.environ.get("BENCH_TIMELINE", "") not in ("", "0")
if BATCHD_B:
    BATCHD_B = os.path.abspath(BATCHD_B)
MiB = 1 << 20
GiB = 1 << 30
BIG = 1 * GiB
AZ_BIG = 256 * MiB
NSMALL = 500
SMALL = 4096
AZ_ACCOUNT = "devstoreaccount1"
AZ_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/"
          "K1SZFPTOtr/KBHBeksoGMGw==")

tmp = tempfile.mkdtemp(prefix="batchd-bench-blob-")
# Tasks run as task users: they must reach the node roots below tmp.
os.chmod(tmp, 0o755)
cleanups = []
results = []

# The SDK's side: the same transfers with 8 operations in parallel.
SDK_JS = r"""
"use strict";
const fs = require("fs");
const path = require("path");
const { ContainerClient } = require("@azure/storage-blob");
const [op, url, a, b] = process.argv.slice(2);
const cc = new ContainerClient(url);

async function pool(items, n, fn) {
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < items.length) await fn(items[next++]);
  }));
}

async function main() {
  const t0 = process.hrtime.bigint();
  if (op === "down-big") {
    const buf = await cc.getBlobClient(a).downloadToBuffer(0, undefined,
      { concurrency: 8, blockSize: 8 << 20 });
    fs.writeFileSync(b, buf);
  } else if (op === "up-big") {
    await cc.getBlockBlobClient(b).uploadFile(a,
      { concurrency: 8, blockSize: 8 << 20 });
  } else if (op === "down-many") {
    const names = [];
    for await (const x of cc.listBlobsFlat({ prefix: a })) names.push(x.name);
    fs.mkdirSync(path.join(b, a), { recursive: true });
    await pool(names, 8, (n) => cc.getBlobClient(n).downloadToFile(path.join(b, n)));
  } else if (op === "up-many") {
    const files = fs.readdirSync(a);
    await pool(files, 8, (f) =>
      cc.getBlockBlobClient(b + f).uploadFile(path.join(a, f)));
  } else if (op === "put-many") {
    const data = Buffer.alloc(4096, 120);
    const names = Array.from({ length: +b }, (_, i) => a + String(i).padStart(5, "0"));
    await pool(names, 8, (n) => cc.getBlockBlobClient(n).upload(data, data.length));
  } else if (op === "put-big") {
    await cc.getBlockBlobClient(b).uploadFile(a, { concurrency: 8, blockSize: 8 << 20 });
  }
  process.stdout.write(String(Number(process.hrtime.bigint() - t0) / 1e9) + "\n");
}
main().catch((e) => { console.error(String(e && e.stack || e)); process.exit(1); });
"""


def run(cmd, env=None, check=True):
    """Runs cmd; returns (seconds, None, stdout)."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate()
    dt = time.monotonic() - t0
    if check and p.returncode != 0:
        sys.exit("%s: exit %d\n%s" % (" ".join(cmd)[:300], p.returncode,
                                      err.decode(errors="replace")[-3000:]))
    return dt, None, out.decode()


def run_ru(cmd, env=None):
    """Runs cmd under /usr/bin/time; returns (seconds, max RSS in KiB).

    Not getrusage of a child of ours: a child forked from this Python
    process starts with Python's resident pages, and ru_maxrss keeps that
    high-water mark across the exec.  time(1) is a small C program, so its
    child's mark is batchd's own (plus well under 1 MiB, the same in every
    run)."""
    out = os.path.join(tmp, "time.out")
    t0 = time.monotonic()
    p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", out] + cmd, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = time.monotonic() - t0
    if p.returncode != 0:
        sys.exit("%s: exit %d\n%s" % (" ".join(cmd)[:300], p.returncode,
                                      p.stderr.decode(errors="replace")[-3000:]))
    with open(out) as f:
        return dt, int(f.read().split()[-1])


def process_cpu(pid):
    """utime + stime of process pid in seconds (/proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        v = f.read().rsplit(")", 1)[1].split()
    return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")


def sync():
    subprocess.run(["sync"], check=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def batchd_run(name, task, env=None, rss=False, binary=None):
    """Runs `batchd run` (or binary's) on task in a fresh root; returns (seconds, maxrss KiB, root)."""
    root = os.path.join(tmp, "root-" + name)
    shutil.rmtree(root, ignore_errors=True)
    path = os.path.join(tmp, name + ".json")
    with open(path, "w") as f:
        json.dump(task, f)
    result = os.path.join(tmp, name + ".result.json")
    sync()
    dt, maxrss = run_ru([binary or batchd, "run", "--quiet", "--root", root, "--result", result,
                         path], env)
    return dt, maxrss, root


def find(root, name):
    """The path of the file called name below root."""
    for d, _, files in os.walk(root):
        if name in files:
            return os.path.join(d, name)
    sys.exit("no %s below %s" % (name, root))


def count_files(root, size):
    n = 0
    for d, _, files in os.walk(root):
        for f in files:
            if os.path.getsize(os.path.join(d, f)) == size:
                n += 1
    return n


def timed(cmd, env=None):
    sync()
    dt, _, out = run(cmd, env)
    return dt, out


def report(title, ours, bases, aim):
    """Prints batchd's median and each baseline's with the ratio (>1: batchd faster)."""
    m = statistics.median(ours)
    print("\n%s" % title)
    print("  %-34s %8.3f s   (runs: %s)" % ("batchd run", m, " ".join("%.3f" % x for x in ours)))
    for name, xs in bases:
        b = statistics.median(xs)
        print("  %-34s %8.3f s   (runs: %s)   batchd %.2fx as fast" %
              (name, b, " ".join("%.3f" % x for x in xs), b / m))
    print("  aim: %s" % aim)
    results.append((title, m, [(n, statistics.median(xs)) for n, xs in bases]))
    sys.stdout.flush()


def write_file(path, size):
    chunk = os.urandom(8 * MiB)
    with open(path, "wb") as f:
        left = size
        while left > 0:
            f.write(chunk[:min(left, len(chunk))])
            left -= len(chunk)


def bench_nginx():
    ng = os.path.join(tmp, "nginx")
    port = int(subprocess.run(["bash", os.path.join(lib, "nginx-harness.sh"), "start", ng],
                              check=True, stdout=subprocess.PIPE).stdout)
    cleanups.append(lambda: subprocess.run(["bash", os.path.join(lib, "nginx-harness.sh"),
                                            "stop", ng]))
    write_file(os.path.join(ng, "www/big.bin"), BIG)
    with open(os.path.join(ng, "www/small.bin"), "wb") as f:
        f.write(os.urandom(SMALL))
    base = "http://127.0.0.1:%d" % port
    out = os.path.join(tmp, "curl.out")

    def task(url, name="big.bin"):
        return {"id": "dl", "commandLine": "/bin/true",
                "resourceFiles": [{"httpUrl": url, "filePath": name}]}

    for label, url, other in (
            ("nginx loopback, 1 GiB file", base + "/big.bin", "curl"),
            ("nginx limit_rate 50m per connection, 1 GiB file", base + "/slow/big.bin", "aria2c")):
        if "nginx" not in ONLY:
            break
        ours, plain, synced = [], [], []
        for _ in range(REPS):
            dt, _, root = batchd_run("ng", task(url))
            assert os.path.getsize(find(root, "big.bin")) == BIG
            shutil.rmtree(root)
            ours.append(dt)
            if other == "curl":
                cmd = ["curl", "-sS", "-o", out, url]
            else:
                cmd = ["aria2c", "-q", "-x8", "-s8", "--file-allocation=none",
                       "--allow-overwrite=true", "-d", tmp, "-o", "curl.out", url]
            dt, _ = timed(cmd)
            assert os.path.getsize(out) == BIG
            plain.append(dt)
            t0 = time.monotonic()
            subprocess.run(["sync", out], check=True)
            synced.append(dt + time.monotonic() - t0)
            os.unlink(out)
        cmdname = "curl -o" if other == "curl" else "aria2c -x8 -s8"
        report(label, ours, [(cmdname, plain), (cmdname + " + fsync", synced)],
               "at least as fast as %s" % cmdname)

    if "memory" in ONLY:
        small, big = [], []
        for _ in range(REPS):
            _, kib, root = batchd_run("mem", task(base + "/small.bin", "small.bin"))
            shutil.rmtree(root)
            small.append(kib)
            _, kib, root = batchd_run("mem", task(base + "/big.bin"))
            shutil.rmtree(root)
            big.append(kib)
        s, b = max(small), max(big)
        print("\nmemory: max RSS of batchd run (/usr/bin/time %M), nginx")
        print("  4 KiB file from nginx:  %6.1f MiB   (runs: %s KiB)" % (s / 1024, " ".join(map(str, small))))
        print("  1 GiB file from nginx:  %6.1f MiB   (runs: %s KiB)" % (b / 1024, " ".join(map(str, big))))
        print("  growth:                 %6.1f MiB   aim: a few MiB at most" % ((b - s) / 1024))
        results.append(("memory growth MiB", (b - s) / 1024, []))


def node_dir():
    return subprocess.run(["bash", os.path.join(lib, "azurite-harness.sh"), "node-dir"],
                          check=True, stdout=subprocess.PIPE).stdout.decode().strip()


def bench_azurite():
    nd = node_dir()
    bp, qp, tp = free_port(), free_port(), free_port()
    azdir = os.path.join(tmp, "azurite")
    os.makedirs(azdir)
    log = open(os.path.join(azdir, "stdout.log"), "w")
    # No --debug: its log line per request would slow every client alike;
    # --silent drops the access log line per request for the same reason.
    # In memory (unless BENCH_AZURITE_DISK=1): no extent file opened and
    # read in Azurite's thread pool per GET, whose CPU competed with the
    # client's on the two cores, and no Loki autosave; about a fifth less
    # of Azurite's CPU per GET, so what the client itself costs weighs more.
    where = ["--location", azdir] if DISK else ["--inMemoryPersistence"]
    az = subprocess.Popen(["node", os.path.join(nd, "node_modules/azurite/dist/src/azurite.js"),
                           "--blobHost", "127.0.0.1", "--blobPort", str(bp),
                           "--queueHost", "127.0.0.1", "--queuePort", str(qp),
                           "--tableHost", "127.0.0.1", "--tablePort", str(tp),
                           "--skipApiVersionCheck", "--loose", "--disableTelemetry",
                           "--silent"] + where,
                          stdout=log, stderr=log, start_new_session=True)
    cleanups.append(lambda: (az.terminate(), az.wait()))
    global az_pid
    az_pid = az.pid
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", bp), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    conn = ("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;"
            "BlobEndpoint=http://127.0.0.1:%d/%s;" % (AZ_ACCOUNT, AZ_KEY, bp, AZ_ACCOUNT))
    env = dict(os.environ, AZURE_STORAGE_CONNECTION_STRING=conn, BLOBTOOL_CONTAINER="bench",
               NODE_PATH=os.path.join(nd, "node_modules"))
    tool = os.path.join(lib, "node/blobtool.js")
    js = os.path.join(tmp, "sdk.js")
    with open(js, "w") as f:
        f.write(SDK_JS)
    run(["node", tool, "create-container"], env)
    sas = run(["node", tool, "sas-container", "racwdl", "7200"], env)[2].strip()
    cont, query = sas.split("?", 1)

    def sdk(*args):
        return float(run(["node", js] + list(args), env)[2])

    # Inputs: a 256 MiB blob (with Content-MD5, as blobtool --md5 sets it,
    # so batchd checks it) and 500 blobs of 4 KiB; and the same as files.
    src = os.path.join(tmp, "src")
    os.makedirs(os.path.join(src, "small"))
    big_rows = "azurite" in ONLY or "azurite-big" in ONLY
    # The big blob only when its rows run: Azurite (in memory) would
    # otherwise hold 256 MiB through the small rows for nothing.
    if big_rows:
        write_file(os.path.join(src, "big.bin"), AZ_BIG)
        run(["node", tool, "upload", os.path.join(src, "big.bin"), "big/big.bin", "--md5"], env)
    sdk("put-many", sas, "small/", str(NSMALL))
    for i in range(NSMALL):
        with open(os.path.join(src, "small/%05d" % i), "wb") as f:
            f.write(b"x" * SMALL)
    # The upload tasks hard-link these as a task user, which the kernel
    # allows (protected_hardlinks) for files it may read and write.
    for d, dirs, files in os.walk(src):
        os.chmod(d, 0o755)
        for f in files:
            os.chmod(os.path.join(d, f), 0o666)

    def down(prefix):
        return {"id": "down", "commandLine": "/bin/true",
                "resourceFiles": [{"storageContainerUrl": sas, "blobPrefix": prefix}]}

    def up(cmd, pattern, path):
        return {"id": "up", "commandLine": cmd,
                "outputFiles": [{"filePattern": pattern,
                                 "destination": {"container": {"containerUrl": sas, "path": path}},
                                 "uploadOptions": {"uploadCondition": "taskCompletion"}}]}

    if "memory" in ONLY:
        # A 1 GiB blob with its Content-MD5 (checked as it arrives),
        # against one 4 KiB blob: the growth of batchd's max RSS.
        write_file(os.path.join(src, "gib.bin"), BIG)
        run(["node", tool, "upload", os.path.join(src, "gib.bin"), "gib/gib.bin", "--md5"], env)
        os.unlink(os.path.join(src, "gib.bin"))
        small, big = [], []
        for _ in range(2):
            _, kib, root = batchd_run("azmem", down("small/00000"))
            shutil.rmtree(root)
            small.append(kib)
            _, kib, root = batchd_run("azmem", down("gib/"))
            assert os.path.getsize(find(root, "gib.bin")) == BIG
            shutil.rmtree(root)
            big.append(kib)
        s, b = max(small), max(big)
        print("\nmemory: max RSS of batchd run (/usr/bin/time %M), Azurite")
        print("  one 4 KiB blob:          %6.1f MiB   (runs: %s KiB)" % (s / 1024, " ".join(map(str, small))))
        print("  one 1 GiB blob, MD5:     %6.1f MiB   (runs: %s KiB)" % (b / 1024, " ".join(map(str, big))))
        print("  growth:                  %6.1f MiB   aim: a few MiB at most" % ((b - s) / 1024))
        sys.stdout.flush()

    small_rows = bool(ONLY & {"azurite", "azurite-small", "azurite-small-down"})
    if big_rows:
        bench_azurite_big(down, up, sdk, sas, src)
    if small_rows:
        bench_azurite_small(down, up, sdk, sas, cont, query, src)


def bench_azurite_big(down, up, sdk, sas, src):
    # 256 MiB down.
    ours, theirs = [], []
    for _ in range(REPS):
        dt, _, root = batchd_run("azd", down("big/"))
        assert os.path.getsize(find(root, "big.bin")) == AZ_BIG
        shutil.rmtree(root)
        ours.append(dt)
        sync()
        theirs.append(sdk("down-big", sas, "big/big.bin", os.path.join(tmp, "sdk.out")))
        assert os.path.getsize(os.path.join(tmp, "sdk.out")) == AZ_BIG
        os.unlink(os.path.join(tmp, "sdk.out"))
    report("Azurite, 256 MiB blob down", ours,
           [("JS SDK downloadToBuffer, concurrency 8", theirs)], "faster than the SDK")

    # 256 MiB up.
    ours, theirs = [], []
    for _ in range(REPS):
        dt, _, root = batchd_run("azu", up("/bin/ln %s/big.bin big.bin" % src, "big.bin", "up/big.bin"))
        shutil.rmtree(root)
        ours.append(dt)
        sync()
        theirs.append(sdk("up-big", sas, os.path.join(src, "big.bin"), "sdkup/big.bin"))
    report("Azurite, 256 MiB blob up", ours,
           [("JS SDK uploadFile, concurrency 8", theirs)], "faster than the SDK")


def timeline(name, cmd, created):
    """Runs cmd once under strace and prints when each step came (ms).

    created(path) tells the client's download files from everything else
    it opens."""
    out = os.path.join(tmp, "strace.out")
    sync()
    subprocess.run(["strace", "--seccomp-bpf", "-f", "-ttt", "-o", out, "-e",
                    "trace=execve,connect,openat,rename,renameat,fchownat,exit_group"] + cmd,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    with open(out) as f:
        calls = [l.split(None, 2) for l in f if l.count(" ") >= 2]
    t0 = float(calls[0][1])

    def at(pred, last=False):
        ts = [float(c[1]) for c in calls if pred(c[2])]
        return "%.0f" % ((ts[-1 if last else 0] - t0) * 1000) if ts else "-"

    def opened(c):
        return c.startswith("openat(") and created(c.split('"')[1])

    def renamed(c):
        return c.startswith("rename") and "batchd-partial" in c
    steps = [("libcurl", at(lambda c: "libcurl.so" in c)),
             ("OpenSSL", at(lambda c: "openssl.cnf" in c)),
             ("connect", at(lambda c: c.startswith("connect(") and "AF_INET" in c)),
             ("1st file", at(opened)), ("last file", at(opened, True)),
             ("1st rename", at(renamed)), ("last rename", at(renamed, True)),
             ("walk", at(lambda c: c.startswith("fchownat(")) + "-" +
              at(lambda c: c.startswith("fchownat("), True)),
             ("exec", at(lambda c: c.startswith("execve(\"/bin/true"))),
             ("exit", at(lambda c: c.startswith("exit_group("), True))]
    print("  %-8s %s" % (name, ", ".join("%s %s" % s for s in steps)))


def spread(xs):
    """"median (min to max)" of xs."""
    return "%.2f (%.2f to %.2f)" % (statistics.median(xs), min(xs), max(xs))


def bench_azurite_small(down, up, sdk, sas, cont, query, src):

    # 500 x 4 KiB down: batchd listing the container, batchd given the
    # 500 URLs (the same input as curl), the SDK (listing), curl; with
    # BENCH_BATCHD_B, the two batchd forms of that binary too.
    cfg = os.path.join(tmp, "curl.cfg")
    cdir = os.path.join(tmp, "curl-many")
    names = ["small/%05d" % i for i in range(NSMALL)]
    with open(cfg, "w") as f:
        for n in names:
            f.write('url = "%s/%s?%s"\noutput = "%s/%s"\n' % (cont, n, query, cdir, n))
    url_task = {"id": "down", "commandLine": "/bin/true",
                "resourceFiles": [{"httpUrl": "%s/%s?%s" % (cont, n, query), "filePath": n}
                                  for n in names]}
    times = {}

    def batchd_many(key, task, binary=None):
        def f():
            dt, _, root = batchd_run("azd" + key, task, binary=binary)
            assert count_files(root, SMALL) == NSMALL
            shutil.rmtree(root)
            return dt
        return key, f

    def sdk_many():
        sync()
        sd = os.path.join(tmp, "sdk-many")
        dt = sdk("down-many", sas, "small/", sd)
        assert count_files(sd, SMALL) == NSMALL
        shutil.rmtree(sd)
        return dt

    def curl_many():
        dt, _ = timed(["curl", "-sS", "--fail", "--parallel", "--parallel-max", "8",
                       "--create-dirs", "-K", cfg])
        assert count_files(cdir, SMALL) == NSMALL
        shutil.rmtree(cdir)
        return dt

    # curl given the container, as batchd's listing form is: one List
    # Blobs (one page holds all 500 names), its names turned into curl's
    # config, then the same parallel GETs.  The same work as the listing
    # form, as the 500 URLs are the same work as the URL form.
    listing_url = "%s?restype=container&comp=list&prefix=small/&%s" % (cont, query)
    list_then_get = (
        'curl -sS --fail "$1" | grep -o "<Name>[^<]*</Name>" | '
        'awk -v c="$2" -v q="$3" -v d="$4" \'{ n = $0; gsub(/<\\/?Name>/, "", n); '
        'printf "url = \\"%s/%s?%s\\"\\noutput = \\"%s/%s\\"\\n", c, n, q, d, n }\' | '
        'curl -sS --fail --parallel --parallel-max 8 --create-dirs -K -')

    def curl_listing():
        dt, _ = timed(["sh", "-c", list_then_get, "sh", listing_url, cont, query, cdir])
        assert count_files(cdir, SMALL) == NSMALL
        shutil.rmtree(cdir)
        return dt

    clients = [batchd_many("listing", down("small/")), batchd_many("urls", url_task),
               ("sdk", sdk_many), ("curl", curl_many), ("curl listing", curl_listing)]
    if BATCHD_B:
        clients[2:2] = [batchd_many("B listing", down("small/"), BATCHD_B),
                        batchd_many("B urls", url_task, BATCHD_B)]
    # Azurite's first several thousand requests run slower (node compiles
    # its hot paths as they warm up; its CPU per 500 GETs kept falling
    # over the first 5,000): BENCH_WARMUP untimed rounds (3) first, so
    # that whoever goes first is not charged for it.
    for _ in range(WARMUP):
        for _, f in clients:
            f()
    # Azurite's own CPU time per run: what each client's requests cost
    # the server, which bounds them all (one node thread).
    azcpu = {}
    # The closest race: who goes first changes from run to run.  Each
    # round's runs are next to each other in time, so the ratio within a
    # round (paired) is spared the drift between rounds (the machine's
    # other load, Azurite's warming): its median and range are printed.
    for i in range(REPS):
        for key, f in clients if i % 2 == 0 else reversed(clients):
            c0 = process_cpu(az_pid)
            times.setdefault(key, []).append(f())
            azcpu.setdefault(key, []).append(process_cpu(az_pid) - c0)

    def paired(a, b):
        return spread([x / y for x, y in zip(times[b], times[a])])

    report("Azurite, 500 blobs of 4 KiB down (storageContainerUrl: listing + 500 GETs)",
           times["listing"],
           [("JS SDK downloadToFile, 8 at once", times["sdk"]),
            ("curl --parallel --parallel-max 8", times["curl"])],
           "faster than the SDK")
    report("Azurite, 500 blobs of 4 KiB down (500 httpUrl: the URLs curl is given)",
           times["urls"], [("curl --parallel --parallel-max 8", times["curl"])],
           "at least as fast as curl")
    report("Azurite, 500 blobs of 4 KiB down (storageContainerUrl against curl listing too)",
           times["listing"],
           [("curl: List Blobs, then --parallel 8", times["curl listing"])],
           "at least as fast as curl doing the same (list, then get)")
    print("  paired (within each round), batchd as fast as curl: listing %s, URLs %s;"
          " listing against curl listing %s" %
          (paired("listing", "curl"), paired("urls", "curl"),
           paired("listing", "curl listing")))
    if BATCHD_B:
        print("  B = %s: listing %s s, URLs %s s; B as fast as A, paired: listing %s, URLs %s" %
              (BATCHD_B, spread(times["B listing"]), spread(times["B urls"]),
               paired("B listing", "listing"), paired("B urls", "urls")))
        print("  B as fast as curl, paired: listing %s, URLs %s" %
              (paired("B listing", "curl"), paired("B urls", "curl")))
    print("  Azurite's CPU per run, s, median (min to max): " +
          ", ".join("%s %s" % (k, spread(v)) for k, v in azcpu.items()))
    if TIMELINE and shutil.which("strace") is not None:
        print("  timeline (ms from the exec, one run each under strace --seccomp-bpf):")
        for key, task in (("listing", down("small/")), ("urls", url_task)):
            root = os.path.join(tmp, "root-tl")
            path = os.path.join(tmp, "tl.json")
            with open(path, "w") as f:
                json.dump(task, f)
            timeline(key, [batchd, "run", "--quiet", "--root", root, "--result",
                           os.path.join(tmp, "tl.result.json"), path],
                     lambda p: p.endswith(".batchd-partial"))
            assert count_files(root, SMALL) == NSMALL
            shutil.rmtree(root)
        timeline("curl", ["curl", "-sS", "--fail", "--parallel", "--parallel-max", "8",
                          "--create-dirs", "-K", cfg], lambda p: p.startswith(cdir))
        assert count_files(cdir, SMALL) == NSMALL
        shutil.rmtree(cdir)

    if "azurite-small-down" in ONLY and not ONLY & {"azurite", "azurite-small"}:
        return
    # 500 x 4 KiB up.
    ours, theirs = [], []
    for _ in range(REPS):
        dt, _, root = batchd_run("azum", up("/bin/cp -al %s/small small" % src, "small/*", "upmany"))
        shutil.rmtree(root)
        ours.append(dt)
        sync()
        theirs.append(sdk("up-many", sas, os.path.join(src, "small"), "sdkmany/"))
    report("Azurite, 500 blobs of 4 KiB up", ours,
           [("JS SDK uploadFile, 8 at once", theirs)], "faster than the SDK")


def main():
    if not os.access(batchd, os.X_OK):
        sys.exit("no batchd at %s (build it, or give its path)" % batchd)
    for tool in ("curl", "aria2c", "node", "nginx", "/usr/bin/time"):
        if shutil.which(tool) is None and not (tool == "nginx" and os.path.exists("/usr/sbin/nginx")):
            sys.exit("%s is not installed (.ci/install-deps installs it)" % tool)
    print("batchd blob benchmark, %s, %d run(s) each, %s, load average %s" %
          (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), REPS, os.uname().nodename,
           " ".join("%.2f" % x for x in os.getloadavg())))
    if "nginx" in ONLY or "memory" in ONLY:
        bench_nginx()
    if ONLY & {"azurite", "azurite-big", "azurite-small", "azurite-small-down", "memory"}:
        bench_azurite()
    print("\nload average at the end: %s" % " ".join("%.2f" % x for x in os.getloadavg()))


try:
    main()
finally:
    for c in reversed(cleanups):
        try:
            c()
        except Exception as e:  # noqa: BLE001 - cleanup goes on
            print("cleanup: %s" % e, file=sys.stderr)
    shutil.rmtree(tmp, ignore_errors=True)
