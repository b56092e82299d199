#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The client commands (job, task, node, wait) against a local spool: what
they write, what they refuse (writing nothing), what they print, their exit
statuses; `wait` on rows completed by hand through the spool's documented
row format; and one end-to-end run with a real daemon."""
import json
import os
import signal
import subprocess
import time

from harness import BATCHD, Spool, Workspace, check, client, finish, local_pool_config

POOL = "testpool"
QUEUE = "testpool-tasks"


def task(i, **kw):
    t = {"id": i, "commandLine": "/bin/true"}
    t.update(kw)
    return t


with Workspace() as ws:
    cfg = local_pool_config(ws, pool_id=POOL)
    spool = Spool(os.path.join(ws.dir, "spool"))

    def cli(*args, **kw):
        return client(cfg, *args, **kw)

    def no_secret(text):
        return "SECRETSIG" not in text

    # ---- jobs ---------------------------------------------------------
    rc, out, err = cli("node", "list")
    check(rc == 0 and out.split() == ["ID", "STATE", "RUNNING", "SLOTS", "HEARTBEAT", "VERSION",
                                   "RETAINED", "FREE", "REASON"],
          "node list of an empty pool: the header only", (rc, out, err))

    rc, out, err = cli("job", "add", ws.write_json("job.json", {"id": "j1", "displayName": "first"}))
    check(rc == 0 and "added job j1" in out, "job add", (rc, out, err))
    row = spool.rows("batchdjobs", POOL).get("j1")
    check(row is not None and row["state"] == "active" and json.loads(row["spec"])["displayName"] == "first"
          and "creationTime" in row, "job add writes the job row", row)
    rc, out, err = cli("job", "add", os.path.join(ws.dir, "job.json"))
    check(rc == 1 and "job j1 exists" in err, "job add of an existing job fails", (rc, err))
    rc, out, err = cli("job", "add", ws.write_json("jobcase.json", {"id": "J1"}))
    check(rc == 1 and "exists" in err and "J1" not in spool.rows("batchdjobs", POOL),
          "job ids are case-insensitive", (rc, err))

    rc, out, err = cli("job", "add", ws.write_json("badjob.json", {"id": "bad", "priority": 5000}))
    check(rc == 1 and "priority" in err, "a bad job file: the error names the field", (rc, err))
    check("bad" not in spool.rows("batchdjobs", POOL), "a bad job file writes nothing")
    rc, out, err = cli("job", "add", ws.write("notjson.json", "{\"id\": \"x\",\n oops}"))
    check(rc == 1 and "notjson.json:2" in err, "a job file that is not JSON: file and line", (rc, err))
    rc, out, err = cli("job", "add", os.path.join(ws.dir, "missing.json"))
    check(rc == 1 and "missing.json" in err, "a missing job file", (rc, err))

    # ---- task add -----------------------------------------------------
    rc, out, err = cli("task", "add", "j1", ws.write_json("one.json", task("t1")))
    check(rc == 0 and "added 1 task to job j1" in out, "task add of a single task", (rc, out, err))
    rc, out, err = cli("task", "add", "j1", ws.write_json("arr.json", [task("t2"), task("t3")]))
    check(rc == 0 and "added 2 tasks to job j1" in out, "task add of an array", (rc, out, err))
    sas = "https://acct.blob.core.windows.net/c/in.txt?sv=2022-11-02&sig=SECRETSIG"
    coll = {"value": [task("t4"), task("t5", resourceFiles=[{"httpUrl": sas, "filePath": "in.txt"}])]}
    rc, out, err = cli("task", "add", "j1", ws.write_json("coll.json", coll))
    check(rc == 0 and "added 2 tasks to job j1" in out, "task add of a {value: [...]} collection", (rc, out, err))
    rows = spool.rows("batchdtasks", "j1")
    check(sorted(rows) == ["t1", "t2", "t3", "t4", "t5"] and
          all(r["state"] == "active" and "creationTime" in r for r in rows.values()),
          "task rows are written active", rows)
    check(json.loads(rows["t2"]["spec"]) == task("t2"), "the row keeps the spec as given", rows["t2"])
    msgs = [json.loads(m) for m in spool.messages(QUEUE)]
    check(sorted(m["task"]["id"] for m in msgs) == ["t1", "t2", "t3", "t4", "t5"] and
          all(m["jobId"] == "j1" and m.get("version") == 1 for m in msgs),
          "one message per task (protocol §2)", msgs)

    n_msgs = len(msgs)
    bad_batch = [task("b1"), {"id": "b2"}, task("b3", constraints={"maxTaskRetryCount": "x"})]
    rc, out, err = cli("task", "add", "j1", ws.write_json("badbatch.json", bad_batch))
    check(rc == 1 and "[1].commandLine" in err and "[2].constraints.maxTaskRetryCount" in err
          and "nothing was added" in err, "a bad task in a batch: every error named", (rc, err))
    check(sorted(spool.rows("batchdtasks", "j1")) == ["t1", "t2", "t3", "t4", "t5"] and
          len(spool.messages(QUEUE)) == n_msgs, "a bad task in a batch: nothing written at all")
    rc, out, err = cli("task", "add", "j1", ws.write_json("good2.json", [task("b4")]),
                       os.path.join(ws.dir, "badbatch.json"))
    check(rc == 1 and "b4" not in spool.rows("batchdtasks", "j1"),
          "a bad file among good ones: nothing written", (rc, err))
    rc, out, err = cli("task", "add", "j1", ws.write_json("prepid.json", [task("b5"), task("jobpreparation")]))
    check(rc == 0, "a task may be called jobpreparation when the job has no preparation task", err)
    rc, out, err = cli("task", "add", "j1", ws.write_json("deps.json", [task("d1", dependsOn={"taskIds": ["t1"]})]))
    check(rc == 1 and "usesTaskDependencies" in err, "the job's rules are checked (dependsOn)", (rc, err))

    rc, out, err = cli("task", "add", "nojob", os.path.join(ws.dir, "one.json"))
    check(rc == 1 and "job nojob not found" in err, "task add to an unknown job", (rc, err))
    rc, out, err = cli("task", "add", "j1", ws.write_json("dup.json", [task("x1"), task("X1")]))
    check(rc == 1 and "given twice" in err and "x1" not in spool.rows("batchdtasks", "j1"),
          "duplicate ids within the input (case-insensitive)", (rc, err))
    rc, out, err = cli("task", "add", "j1", ws.write_json("dup2.json", [task("T1")]))
    check(rc == 1 and "case-insensitive" in err, "an id that differs from a row's only in case", (rc, err))
    rc, out, err = cli("task", "add", "j1", ws.write_json("dup3.json", [task("t1", commandLine="/bin/false")]))
    check(rc == 1 and "another spec" in err, "an existing id with another spec", (rc, err))

    # Idempotency: the same tasks again are skipped, the new ones added.
    n_msgs = len(spool.messages(QUEUE))
    rc, out, err = cli("task", "add", "j1", ws.write_json("again.json", [task("t2"), task("t3"), task("t6")]))
    check(rc == 0 and "added 1 task to job j1" in out and "skipped 2 tasks" in out,
          "re-running task add adds only what is missing", (rc, out, err))
    check(len(spool.messages(QUEUE)) == n_msgs + 1, "skipped tasks send no message")
    # A message lost after its row was written: --resend sends it again.
    spool.drop_messages(QUEUE)
    rc, out, err = cli("task", "add", "--resend", "j1", os.path.join(ws.dir, "again.json"))
    check(rc == 0 and "sent the messages of 3 tasks again" in out and len(spool.messages(QUEUE)) == 3,
          "task add --resend queues untouched tasks again", (rc, out, err))

    # ---- task list and show -------------------------------------------
    rc, out, err = cli("task", "list", "j1")
    lines = out.splitlines()
    check(rc == 0 and lines[0].split() == ["ID", "STATE", "EXIT", "RESULT", "NODE", "RETRIES"] and
          [l.split()[0] for l in lines[1:]] == ["b5", "jobpreparation", "t1", "t2", "t3", "t4", "t5", "t6"],
          "task list", out)
    rc, out, err = cli("task", "list", "j1", "--state", "completed")
    check(rc == 0 and len(out.splitlines()) == 1, "task list --state filters", out)
    rc, out, err = cli("task", "list", "j1", "--state", "bogus")
    check(rc == 1, "task list --state checks the state", err)
    rc, out, err = cli("task", "show", "j1", "t5", "--json")
    try:
        shown = json.loads(out)
    except ValueError:
        shown = None
    check(rc == 0 and shown is not None and shown["id"] == "t5" and shown["state"] == "active" and
          shown["commandLine"] == "/bin/true" and shown["executionInfo"]["retryCount"] == 0 and
          "nodeInfo" not in shown, "task show --json: the CloudTask shape", out)
    check(no_secret(out) and "REDACTED" in out, "task show --json redacts SAS signatures", out)
    rc, out, err = cli("task", "show", "j1", "t5")
    check(rc == 0 and "state:" in out and "/bin/true" in out and no_secret(out), "task show", out)
    rc, out, err = cli("task", "show", "j1", "nope")
    check(rc == 1 and "task nope not found in job j1" in err, "task show of an unknown task", err)

    # ---- job list and show --------------------------------------------
    rc, out, err = cli("job", "list")
    check(rc == 0 and [l.split()[:2] for l in out.splitlines()] == [["ID", "STATE"], ["j1", "active"]],
          "job list", out)
    rc, out, err = cli("job", "list", "--tasks")
    check(rc == 0 and out.splitlines()[1].split()[3:] == ["8", "8", "0", "0", "0"], "job list --tasks", out)
    rc, out, err = cli("job", "show", "j1", "--json")
    try:
        shown = json.loads(out)
    except ValueError:
        shown = None
    check(rc == 0 and shown and shown["id"] == "j1" and shown["state"] == "active" and
          shown["displayName"] == "first" and shown["poolInfo"]["poolId"] == POOL and
          "creationTime" in shown, "job show --json: the CloudJob shape", out)
    rc, out, err = cli("job", "show", "j1")
    check(rc == 0 and "8: 8 active" in out, "job show counts the tasks", out)
    rc, out, err = cli("job", "show", "nope")
    check(rc == 1 and "job nope not found" in err, "job show of an unknown job", err)

    # ---- wait ---------------------------------------------------------
    t0 = time.monotonic()
    rc, out, err = cli("wait", "j1", "--timeout", "PT1.5S")
    elapsed = time.monotonic() - t0
    check(rc == 2 and "timed out" in err, "wait on tasks nobody runs times out with 2", (rc, out, err))
    check(1.4 < elapsed < 20, "wait keeps to its timeout", elapsed)
    rc, out, err = cli("wait", "j1", "--timeout", "P1Y")
    check(rc == 1 and "--timeout" in err, "wait checks --timeout", err)

    # Complete rows by hand, as a node would, through the spool's row format.
    def complete(job, tid, ok=True, code=0):
        props = {"state": "completed", "nodeId": "handnode", "exitCode": code,
                 "result": "success" if ok else "failure", "retryCount": 0,
                 "startTime": "2026-01-01T00:00:00.000Z", "endTime": "2026-01-01T00:00:01.000Z"}
        if not ok:
            props.update(failureCategory="usererror", failureCode="FailureExitCode",
                         failureMessage="The task exited with an exit code representing a failure")
        info = {k: props[k] for k in ("startTime", "endTime", "exitCode", "retryCount", "result")}
        info["requeueCount"] = 0
        if not ok:
            info["failureInfo"] = {"category": "usererror", "code": "FailureExitCode",
                                   "message": props["failureMessage"]}
        props["executionInfo"] = json.dumps(info)
        spool.merge_row("batchdtasks", job, tid, **props)

    rc, out, err = cli("job", "add", ws.write_json("job2.json", {"id": "j2"}))
    rc, out, err = cli("task", "add", "j2", ws.write_json("j2.json", [task("a%d" % i) for i in range(5)]))
    check(rc == 0, "task add to a second job", err)
    for i in range(5):
        complete("j2", "a%d" % i)
    rc, out, err = cli("wait", "j2", "--timeout", "PT10S")
    check(rc == 0 and "5 succeeded" in out, "wait exits 0 when every task succeeded", (rc, out, err))
    rc, out, err = cli("task", "show", "j2", "a1", "--json")
    shown = json.loads(out) if rc == 0 else {}
    check(shown.get("nodeInfo") == {"poolId": POOL, "nodeId": "handnode"} and
          shown["executionInfo"]["result"] == "success", "task show --json of a completed task", out)

    rc, out, err = cli("job", "add", ws.write_json("job3.json", {"id": "j3"}))
    cli("task", "add", "j3", ws.write_json("j3.json", [task("ok"), task("bad"), task("dep")]))
    complete("j3", "ok")
    complete("j3", "bad", ok=False, code=3)
    spool.merge_row("batchdtasks", "j3", "dep", blockedBy="bad")
    rc, out, err = cli("wait", "j3", "--timeout", "PT10S")
    check(rc == 1 and "bad (exit code 3): FailureExitCode" in err and "blocked: dep" in err and
          "1 failed" in out, "wait exits 1 and lists failed and blocked tasks", (rc, out, err))
    rc, out, err = cli("task", "list", "j3", "--state", "failed")
    check(rc == 0 and [l.split()[0] for l in out.splitlines()[1:]] == ["bad"], "task list --state failed", out)

    # A running task keeps wait waiting; when it completes, wait ends.
    rc, out, err = cli("job", "add", ws.write_json("job4.json", {"id": "j4"}))
    cli("task", "add", "j4", ws.write_json("j4.json", [task("slow")]))
    spool.merge_row("batchdtasks", "j4", "slow", state="running", nodeId="handnode")
    p = subprocess.Popen([BATCHD, "wait", "j4", "--config", cfg, "--timeout", "PT30S"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(1.0)
    check(p.poll() is None, "wait waits for a running task")
    complete("j4", "slow")
    try:
        wout, werr = p.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        wout, werr = p.communicate()
    check(p.returncode == 0, "wait ends soon after the last task completes",
          (p.returncode, werr.decode(errors="replace")))

    # Tasks that end at a steady rate: wait reads again when the rate says
    # the job is done, so it ends soon after the last one, not up to 2 s
    # later (its old backoff would have read at 3.0 s and 5.0 s here).
    rc, out, err = cli("job", "add", ws.write_json("job5.json", {"id": "j5"}))
    cli("task", "add", "j5", ws.write_json("j5.json", [task("r%d" % i) for i in range(31)]))
    p = subprocess.Popen([BATCHD, "wait", "j5", "--config", cfg, "--timeout", "PT60S"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    t0 = time.monotonic()
    for i in range(31):
        time.sleep(max(0.0, t0 + 0.1 * (i + 1) - time.monotonic()))
        complete("j5", "r%d" % i)
    last = time.monotonic()
    try:
        wout, werr = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        wout, werr = p.communicate()
    late = time.monotonic() - last
    check(p.returncode == 0 and b"31 succeeded" in wout, "wait on tasks ending at a steady rate",
          (p.returncode, werr.decode(errors="replace")))
    check(late < 0.8, "wait ends within 0.8 s of the last task's end", late)

    # ---- terminate ----------------------------------------------------
    rc, out, err = cli("job", "terminate", "j1", "--reason", "enough")
    row = spool.rows("batchdjobs", POOL)["j1"]
    check(rc == 0 and row["state"] == "completed" and row["terminateReason"] == "enough" and
          "endTime" in row, "job terminate", (rc, err, row))
    rc, out, err = cli("job", "terminate", "j1")
    check(rc == 1 and "already completed" in err, "job terminate of a completed job fails", err)
    rc, out, err = cli("job", "terminate", "nope")
    check(rc == 1 and "not found" in err, "job terminate of an unknown job", err)
    rc, out, err = cli("task", "add", "j1", ws.write_json("late.json", [task("late")]))
    check(rc == 1 and "completed" in err, "no tasks are added to a completed job", err)
    rc, out, err = cli("job", "show", "j1", "--json")
    shown = json.loads(out) if rc == 0 else {}
    check(shown.get("state") == "completed" and shown["executionInfo"].get("terminateReason") == "enough",
          "job show --json after terminate", out)

    # ---- usage --------------------------------------------------------
    rc, out, err = cli("job", "add", "--json", os.path.join(ws.dir, "job.json"))
    check(rc == 1 and "--json" in err, "an option a command does not take", err)
    rc, out, err = cli("task", "frob")
    check(rc == 1 and "unknown command" in err, "an unknown subcommand", err)

    # ---- many tasks at once ---------------------------------------------
    cli("job", "add", ws.write_json("job5.json", {"id": "many"}))
    t0 = time.monotonic()
    rc, out, err = cli("task", "add", "many", ws.write_json("many.json", {"value": [task("m%04d" % i) for i in range(2000)]}),
                       timeout=300)
    elapsed = time.monotonic() - t0
    print("task add of 2000 tasks took %.2f s" % elapsed)
    check(rc == 0 and "added 2000 tasks" in out, "task add of 2000 tasks", (rc, err))
    check(len(spool.rows("batchdtasks", "many")) == 2000, "2000 rows")

    # ---- end to end with a real daemon ----------------------------------
    node_cfg = local_pool_config(
        ws, name="node.json", pool_id="e2epool", node_id="n1", taskSlotsPerNode=4,
        spoolDir=os.path.join(ws.dir, "e2espool"),
        queue={"pollMinInterval": "PT0.05S", "pollMaxInterval": "PT0.5S"})
    rc, out, err = client(node_cfg, "job", "add", ws.write_json("e2ejob.json", {"id": "e2e"}))
    check(rc == 0, "end to end: job add", err)
    marks = ws.writable_dir("marks")
    tasks = [{"id": "e%02d" % i, "commandLine": "/bin/sh -c 'touch %s/$AZ_BATCH_TASK_ID'" % marks}
             for i in range(20)]
    rc, out, err = client(node_cfg, "task", "add", "e2e", ws.write_json("e2etasks.json", tasks))
    check(rc == 0 and "added 20 tasks" in out, "end to end: task add", err)
    log = open(os.path.join(ws.dir, "daemon.log"), "wb")
    daemon = subprocess.Popen([BATCHD, "daemon", "--config", node_cfg], stdout=log, stderr=subprocess.STDOUT)
    try:
        rc, out, err = client(node_cfg, "wait", "e2e", "--timeout", "PT2M", timeout=200)
        check(rc == 0 and "20 succeeded" in out, "end to end: wait exits 0", (rc, out, err))
        check(sorted(os.listdir(marks)) == ["e%02d" % i for i in range(20)], "end to end: every task ran")
        rc, out, err = client(node_cfg, "node", "list")
        check(rc == 0 and len(out.splitlines()) == 2 and out.splitlines()[1].split()[0] == "n1",
              "end to end: node list shows the node", out)
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            status = daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            daemon.kill()
            status = "hung"
        log.close()
    check(status == 0, "end to end: the daemon exits 0 on SIGTERM", status)
finish()
