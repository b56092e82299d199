#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Receiving ahead (daemon.c): while short tasks flow, a node receives a
message more than it has free slots, so that a slot that frees starts the
next task at once; a message received so that then finds no slot within a
second goes back to the queue for the other nodes.

node1 (one slot) runs 30 short tasks, then `long` (sleep 6) while it has
already received one of `after0`..`after3`.  node2 starts once node1 has
given that one back: it and the others run on node2, before `long` ends,
instead of waiting on node1 for it.  Every task completes once."""
import os
import re

from harness import Spool, Workspace, check, finish
from pool import Pool, wait_for

with Workspace() as ws:
    pool = Pool(ws, nodes=2, slots=1)
    rows = lambda: Spool(os.path.join(ws.dir, "spool")).rows("batchdtasks", "job")
    check(pool.cli("job", "add", ws.write_json("job.json", {"id": "job"}))[0] == 0,
          "job added")
    # Three adds, so that the queue holds them in this order (one add's
    # messages share a visible time; their order is not kept).
    batches = [[{"id": "short%02d" % i, "commandLine": "/bin/true"} for i in range(30)],
               [{"id": "long", "commandLine": "/bin/sleep 6"}],
               [{"id": "after%d" % i, "commandLine": "/bin/true"} for i in range(4)]]
    for n, batch in enumerate(batches):
        rc, out, err = pool.cli("task", "add", "job", ws.write_json("t%d.json" % n, batch))
        check(rc == 0, "%d tasks added" % len(batch), err)
    pool.start("node1")
    check(wait_for(lambda: rows().get("long", {}).get("state") == "running", 60, 0.05),
          "node1 runs the long task", rows().get("long"))
    # node2 starts once node1 has given an after task back, so that node1
    # gets one ahead before node2 could take them all (a race otherwise).
    check(wait_for(lambda: re.search(r"task after\d: received ahead, but no slot freed here "
                                     r"soon", pool.log("node1")), 30, 0.05),
          "node1 receives an after task ahead and gives it back",
          [l for l in pool.log("node1").splitlines() if "after" in l or "long" in l])
    pool.start("node2")
    rc, out, err = pool.cli("wait", "job", timeout=120)
    check(rc == 0, "every task succeeds", out + err)
    got = rows()
    long_end = got["long"].get("endTime", "")
    for i in range(4):
        r = got.get("after%d" % i, {})
        check(r.get("nodeId") == "node2" and r.get("endTime", "~") < long_end,
              "after%d ran on node2 while node1's long task ran" % i,
              (r.get("nodeId"), r.get("endTime"), long_end))
    check(got["long"].get("nodeId") == "node1", "long ran on node1")
    check(all(r.get("state") == "completed" for r in got.values()) and len(got) == 35,
          "35 rows, all completed", len(got))
    log1 = pool.log("node1")
    check(re.search(r"task after\d: received ahead, but no slot freed here soon", log1),
          "node1 had received one of the after tasks ahead and gave it back",
          [l for l in log1.splitlines() if "after" in l or "long" in l])
    check(log1.count("received ahead, but no slot") == 1,
          "and received nothing more ahead while the long task ran",
          log1.count("received ahead, but no slot"))
    check(pool.stop() == {"node1": 0, "node2": 0}, "both nodes stop cleanly")
finish()
