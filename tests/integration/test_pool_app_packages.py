#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Application packages on a pool whose store is a blob container in
Azurite: 20 tasks at once on one daemon that all need one package cause
one download of it (counted in Azurite's request log and in the daemon's
log); the pool's package is installed when the daemon starts and every
task sees it; a package whose blob changed (new ETag) is installed again
in a new directory while the old one stays; a node whose pool package
cannot be installed becomes unusable with the reason.  Archives are made
here, at test time, and uploaded with the official SDK."""
import io
import json
import os
import re
import subprocess
import sys
import time
import zipfile

from harness import AZURITE_ACCOUNT, AZURITE_KEY, Azurite, Workspace, check, finish, read
from pool import Pool, wait_for

NTASKS = 20


def node_missing():
    return subprocess.run(["sh", "-c", "command -v node"], capture_output=True).returncode != 0


def all_services_conn(az):
    """A connection string naming the blob, queue and table services of the
    harness's Azurite (their ports are in its ports file)."""
    with open(os.path.join(az.dir, "ports")) as f:
        bp, qp, tp = (int(x) for x in f.read().split())
    return ("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;"
            "BlobEndpoint=http://127.0.0.1:%d/%s;QueueEndpoint=http://127.0.0.1:%d/%s;"
            "TableEndpoint=http://127.0.0.1:%d/%s;" %
            (AZURITE_ACCOUNT, AZURITE_KEY, bp, AZURITE_ACCOUNT, qp, AZURITE_ACCOUNT,
             tp, AZURITE_ACCOUNT))


def zip_file(ws, name, files):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for n, data in files:
            z.writestr(n, data)
    return ws.write(name, buf.getvalue())


if node_missing():
    print("SKIP node is not installed: the Azurite pool test needs Node.js")
    sys.exit(77)

with Workspace() as ws:
    az = Azurite(ws)
    conn = all_services_conn(az)
    logdir = ws.writable_dir("logs")  # tasks run as the pool's task user

    # Some MiB of incompressible bytes, so that a second download would show.
    payload = os.urandom(3 << 20)
    tool1 = zip_file(ws, "tool1.zip", [("hello.txt", b"tool one\n"), ("blob.bin", payload)])
    tool2 = zip_file(ws, "tool2.zip", [("hello.txt", b"tool two\n")])
    pooltool = zip_file(ws, "pooltool.zip", [("hello.txt", b"pool tool\n")])
    default = ws.write("default.txt", "7\n")
    az.tool("create-container", container="apps")
    az.tools(("apps", "upload", tool1, "tool/1.0.zip"),
             ("apps", "upload", pooltool, "PoolTool/7.zip"),
             ("apps", "upload", default, "PoolTool/default"))

    pool = Pool(ws, nodes=2, slots=NTASKS, storage={"connectionString": conn}, extra={
        "applicationStore": {"container": "apps"},
        "applicationPackages": [{"applicationId": "pooltool"}],
    })
    # node2 is the one whose pool package does not exist.
    with open(pool.configs[1][1]) as f:
        bad = json.load(f)
    bad["applicationPackages"] = [{"applicationId": "missing", "version": "1"}]
    with open(pool.configs[1][1], "w") as f:
        json.dump(bad, f)

    try:
        log_mark = az.debug_log_size()
        pool.start("node1")
        check(wait_for(lambda: "the pool's application packages are installed" in pool.log("node1"), 120),
              "pool package: installed when the daemon starts", pool.log("node1")[-2000:])

        # ---- 20 tasks at once, one package ------------------------------
        rc, out, err = pool.cli("job", "add", ws.write_json("job.json", {"id": "apps"}))
        check(rc == 0, "job add", err)
        cmd = ("/bin/sh -c 'echo $AZ_BATCH_TASK_ID $AZ_BATCH_APP_PACKAGE_tool_1_0 "
               "$AZ_BATCH_APP_PACKAGE_pooltool $AZ_BATCH_APP_PACKAGE_PoolTool_7 "
               "$(cat $AZ_BATCH_APP_PACKAGE_tool_1_0/hello.txt) >> %s/ran.log'" % logdir)
        tasks = [{"id": "t%02d" % i, "commandLine": cmd,
                  "applicationPackageReferences": [{"applicationId": "tool", "version": "1.0"}]}
                 for i in range(NTASKS)]
        rc, out, err = pool.cli("task", "add", "apps", ws.write_json("tasks.json", {"value": tasks}))
        check(rc == 0, "task add of %d tasks" % NTASKS, err)
        rc, out, err = pool.cli("wait", "apps", "--timeout", "PT4M", timeout=300)
        check(rc == 0, "all %d tasks succeed" % NTASKS, (rc, out[-1000:], err[-1000:]))
        lines = [l.split() for l in read(os.path.join(logdir, "ran.log")).splitlines() if l.strip()]
        check(len(lines) == NTASKS, "every task ran once", len(lines))
        dirs = {l[1] for l in lines if len(l) > 1}
        check(len(dirs) == 1, "every task saw one directory of the package", dirs)
        check(all(len(l) == 6 and l[4] == "tool" and l[5] == "one" for l in lines),
              "every task read the package's file", lines[:3])
        check(all(l[2] == l[3] and "/applications/pooltool-7-" in l[2] for l in lines),
              "every task sees the pool's package, versioned and unversioned", lines[:3])
        node_log = pool.log("node1")
        check(node_log.count("fetching tool/1.0.zip") == 1,
              "the daemon fetched the package once", node_log.count("fetching tool/1.0.zip"))
        gets = []
        for _ in range(100):
            gets = [l for l in az.debug_log(log_mark).splitlines()
                    if re.search(r"RequestMethod=GET\b", l) and "/apps/tool/1.0.zip" in l]
            if gets:
                time.sleep(1)   # Azurite writes its log late: let the rest come
                gets = [l for l in az.debug_log(log_mark).splitlines()
                        if re.search(r"RequestMethod=GET\b", l) and "/apps/tool/1.0.zip" in l]
                break
            time.sleep(0.1)
        check(len(gets) == 1, "Azurite served the package's blob once to %d tasks" % NTASKS,
              len(gets))

        # ---- the blob changes: a new directory, the old one kept -------
        az.tool("upload", tool2, "tool/1.0.zip", container="apps")
        old_dir = dirs.pop() if dirs else ""
        more = [{"id": "after", "commandLine": cmd,
                 "applicationPackageReferences": [{"applicationId": "Tool", "version": "1.0"}]}]
        rc, out, err = pool.cli("task", "add", "apps", ws.write_json("more.json", {"value": more}))
        rc, out, err = pool.cli("wait", "apps", "--timeout", "PT2M", timeout=200)
        last = [l.split() for l in read(os.path.join(logdir, "ran.log")).splitlines()
                if l.startswith("after ")]
        check(rc == 0 and len(last) == 1 and last[0][1] != old_dir and last[0][5] == "two",
              "new ETag: installed again in a new directory", last)
        check(os.path.isfile(os.path.join(old_dir, "hello.txt")),
              "new ETag: the old directory is still there", old_dir)

        # ---- a pool package that cannot be installed -------------------
        pool.start("node2")

        def node2_state():
            rc, out, err = pool.cli("node", "list")
            for l in out.splitlines():
                f = l.split()
                if f and f[0] == "node2":
                    return f[1] if len(f) > 1 else ""
            return None
        check(wait_for(lambda: node2_state() == "unusable", 120),
              "bad pool package: the node is unusable", node2_state())
        log2 = pool.log("node2")
        check("unusable: application package 'missing' version '1'" in log2,
              "bad pool package: the reason names the package", log2[-2000:])
        check("starting" not in " ".join(l for l in log2.splitlines() if "task" in l and "running" in l),
              "bad pool package: the node ran no task")
    finally:
        status = pool.stop()
        check(all(s == 0 for s in status.values()), "daemons stop cleanly", status)
        az.stop()

finish()
