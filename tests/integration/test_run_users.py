#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Task users and the agent's secrets (reference §1.5, §3.3, §3.4), as root
with real accounts: who a task runs as for each userIdentity, who owns its
directory, that output files and file:// resource files are read with the
task user's rights (a symlink to /etc/shadow or to the agent's configuration
gives FileUploadAccessDenied, never the content), that a task cannot read
the configuration, the state directory or the spool, and that batchd run as
another user runs tasks as itself and says so once."""
import json
import os
import pwd
import grp
import shutil
import subprocess
import sys

from harness import BATCHD, Nginx, Workspace, check, finish, read
from pool import Pool

ACCT = "_bdit_render"      # a configured account of this test (removed after)
ACCT_UID = 61501
SECRET_KEY = "c2VjcmV0LWtleS1vZi10aGUtdGVzdA=="   # base64 of a made-up key

if os.geteuid() != 0:
    print("SKIP: task users need root")
    sys.exit(77)


def cleanup():
    subprocess.run(["userdel", ACCT], capture_output=True)
    subprocess.run(["groupdel", ACCT], capture_output=True)


def lines(path):
    return read(path).splitlines()


def failure(res):
    return (res or {}).get("executionInfo", {}).get("failureInfo") or {}


def show(cmd):
    return "/bin/sh -c '%s'" % cmd


WHO_CMD = "id -un; id -Gn; echo $AZ_BATCH_TASK_USER $AZ_BATCH_TASK_USER_IDENTITY $USER"
WHO = show(WHO_CMD)

cleanup()
with Workspace() as ws:
    # -- who a task runs as -------------------------------------------------
    status, out, err, res = ws.run({"id": "plain", "commandLine": WHO})
    td = ws.task_dir("plain")
    so = lines(os.path.join(td, "stdout.txt"))
    check(status == 0, "default task runs", err[-1500:])
    check(so[:1] == ["_azbatch"], "default task runs as the pool non-admin user _azbatch", so)
    check("_azbatchgrp" in so[1].split() and "_azbatchsudogrp" not in so[1].split(),
          "pool non-admin user is in _azbatchgrp only", so)
    check(so[2:] == ["_azbatch PoolNonAdmin _azbatch"],
          "AZ_BATCH_TASK_USER, AZ_BATCH_TASK_USER_IDENTITY and USER", so)
    st = os.stat(td)
    check(pwd.getpwuid(st.st_uid).pw_name == "_azbatch" and st.st_mode & 0o777 == 0o700,
          "task dir owned by the task user, mode 0700", (st.st_uid, oct(st.st_mode)))
    for name in ("wd", "stdout.txt", "stderr.txt"):
        st = os.stat(os.path.join(td, name))
        check(pwd.getpwuid(st.st_uid).pw_name == "_azbatch", "%s owned by the task user" % name)
    st = os.stat(os.path.join(ws.root, "shared"))
    check(st.st_mode & 0o7777 == 0o1777, "shared dir is writable by every task user (1777)",
          oct(st.st_mode))

    status, out, err, res = ws.run({"id": "admin", "commandLine": WHO,
                                    "userIdentity": {"autoUser": {"elevationLevel": "admin"}}})
    so = lines(os.path.join(ws.task_dir("admin"), "stdout.txt"))
    check(status == 0 and so[:1] == ["_azbatchadmin"], "admin elevation runs as _azbatchadmin", so)
    check(len(so) > 1 and "_azbatchsudogrp" in so[1].split(), "admin user is in the admin group",
          so)
    check(so[2:] == ["_azbatchadmin PoolAdmin _azbatchadmin"], "admin identity variables", so)

    status, out, err, res = ws.run({"id": "scoped", "commandLine": WHO,
                                    "userIdentity": {"autoUser": {"scope": "task"}}})
    td = ws.task_dir("scoped")
    so = lines(os.path.join(td, "stdout.txt"))
    check(status == 0 and so[:1] and so[0].startswith("_azbatchtask_"),
          "task scope runs as a task user _azbatchtask_<n>", so)
    check(so[2:] and so[2].endswith(" TaskNonAdmin " + so[0]), "task scope identity", so)
    check(os.stat(td).st_uid == 0,
          "a task-scope user's task dir is taken back when it ends (the user is reused)")

    status, out, err, res = ws.run({"id": "scopedadm", "commandLine": WHO,
                                    "userIdentity": {"autoUser": {"scope": "task",
                                                                  "elevationLevel": "admin"}}})
    so = lines(os.path.join(ws.task_dir("scopedadm"), "stdout.txt"))
    check(status == 0 and so[:1] and so[0].startswith("_azbatchtaskadm_") and
          "_azbatchsudogrp" in so[1].split() and so[2].endswith(" TaskAdmin " + so[0]),
          "task scope admin: own user in the admin group", so)

    # -- username mapped to an account of the node configuration ------------
    cfg = ws.write_json("users.json", {"users": {"accounts": {
        ACCT: {"uid": ACCT_UID, "gid": ACCT_UID, "elevationLevel": "admin"}}}})
    status, out, err, res = ws.run({"id": "named", "commandLine": show("id -u; " + WHO_CMD),
                                    "userIdentity": {"username": ACCT}}, extra=["--config", cfg])
    so = lines(os.path.join(ws.task_dir("named"), "stdout.txt"))
    check(status == 0 and so[:2] == [str(ACCT_UID), ACCT],
          "userIdentity.username runs as the configured account (created)", (so, err[-800:]))
    check(so[3:] == ["%s %s %s" % (ACCT, ACCT, ACCT)], "named account identity variables", so)
    check(len(so) > 2 and "_azbatchsudogrp" in so[2].split(), "admin account in the admin group", so)
    status, out, err, res = ws.run({"id": "unknown", "commandLine": WHO,
                                    "userIdentity": {"username": "nosuchaccount"}})
    check(status != 0 and "nosuchaccount" in failure(res).get("message", ""),
          "an unknown username fails the task with a clear message", failure(res))

    # -- resource files are read with the task user's rights ----------------
    ws.write("public.txt", "hello\n", 0o644)
    ws.write("private.txt", "root only\n", 0o600)
    status, out, err, res = ws.run({
        "id": "dl", "commandLine": show("cat public.txt"),
        "resourceFiles": [{"httpUrl": "file://" + ws.dir + "/public.txt", "filePath": "public.txt"}]})
    st = os.stat(os.path.join(ws.task_dir("dl"), "wd", "public.txt"))
    check(status == 0 and pwd.getpwuid(st.st_uid).pw_name == "_azbatch",
          "a downloaded resource file is owned by the task user", (err[-800:], st.st_uid))
    for src in ("/etc/shadow", ws.dir + "/private.txt"):
        status, out, err, res = ws.run({
            "id": "dlsecret", "commandLine": show("true"),
            "resourceFiles": [{"httpUrl": "file://" + src, "filePath": "stolen"}]})
        f = failure(res)
        check(status != 0 and f.get("code") == "BlobAccessDenied",
              "file://%s as a resource file: BlobAccessDenied" % src, f)
        check(not os.path.exists(os.path.join(ws.task_dir("dlsecret"), "wd", "stolen")),
              "nothing of %s is copied" % src)

    # -- outputs: symlinks to secrets -----------------------------------------
    secret_cfg = ws.write("secret/batchd.json", json.dumps({
        "storage": {"accountName": "acct", "accountKey": SECRET_KEY}}), 0o600)
    os.chmod(os.path.dirname(secret_cfg), 0o755)
    ng = Nginx(ws)
    try:
        c = "file://" + ws.dir + "/out"
        web = ng.url + "/upload/cont?sv=2023-11-03&sp=w&sig=Sig%3D"
        outputs = []
        for pattern in ("shadow.txt", "config.txt"):
            for dest in (c, web):
                outputs.append({"filePattern": pattern,
                                "destination": {"container": {"containerUrl": dest,
                                                              "path": "x/" + pattern}},
                                "uploadOptions": {"uploadCondition": "taskCompletion"}})
        outputs.append({"filePattern": "fine.txt",
                        "destination": {"container": {"containerUrl": c}},
                        "uploadOptions": {"uploadCondition": "taskCompletion"}})
        status, out, err, res = ws.run({
            "id": "links",
            "commandLine": show("ln -s /etc/shadow shadow.txt; ln -s %s config.txt; "
                                "echo fine > fine.txt; cat %s; echo rc=$?" % (secret_cfg, secret_cfg)),
            "outputFiles": outputs}, extra=["--config", secret_cfg])
        td = ws.task_dir("links")
        f = failure(res)
        check(f.get("code") == "FileUploadAccessDenied" and f.get("category", "").lower() == "usererror",
              "symlinks to secrets give FileUploadAccessDenied", (f, err[-1000:]))
        check("may not read" in f.get("message", ""), "the message says the task user may not read it",
              f)
        errs = read(os.path.join(td, "fileuploaderr.txt"))
        check(errs.count("FileUploadAccessDenied") == 4,
              "fileuploaderr.txt has the four refused uploads", errs)
        shadow = read("/etc/shadow")
        leaked = []
        for base in (os.path.join(ws.dir, "out"), ng.www):
            for dirpath, _, files in os.walk(base):
                for name in files:
                    data = read(os.path.join(dirpath, name))
                    if SECRET_KEY in data or (shadow and shadow in data) or "root:" in data:
                        leaked.append(os.path.join(dirpath, name))
        check(not leaked, "no content of /etc/shadow or the configuration is uploaded", leaked)
        check(not os.path.exists(os.path.join(ws.dir, "out/x")), "nothing uploaded for the links")
        check(read(os.path.join(ws.dir, "out/fine.txt")) == "fine\n",
              "other outputs of the task are uploaded")
        so = read(os.path.join(td, "stdout.txt")) + read(os.path.join(td, "stderr.txt"))
        check(SECRET_KEY not in so and "rc=1" in so, "the task cannot read the configuration", so)
        for name in ("fileuploadout.txt", "fileuploaderr.txt"):
            st = os.stat(os.path.join(td, name))
            check(pwd.getpwuid(st.st_uid).pw_name == "_azbatch", "%s owned by the task user" % name)
    finally:
        ng.stop()

    # -- a configuration with a key that task users could read is refused ----
    open_cfg = ws.write("open.json", json.dumps({
        "storage": {"accountName": "acct", "accountKey": SECRET_KEY}}), 0o644)
    status, out, err, res = ws.run({"id": "refused", "commandLine": WHO},
                                   extra=["--config", open_cfg])
    check(status != 0 and "holds storage credentials" in err and "chmod 600" in err,
          "a configuration with a key readable by task users is refused", err[-800:])
    check(SECRET_KEY not in err, "the refusal does not print the key")
    check(not os.path.exists(ws.task_dir("refused")), "no task ran")

    # -- the daemon: state dir and spool out of reach ------------------------
    pool = Pool(ws, nodes=1, slots=1, extra={"startTask": {
        "commandLine": show("id -un"), "waitForSuccess": True,
        "userIdentity": {"autoUser": {"scope": "task"}}}})
    pool.start()
    try:
        node_cfg = pool.configs[0][1]
        cfg = json.load(open(node_cfg))
        probe = ("cat %s >/dev/null 2>&1 || echo config-denied; "
                 "ls %s >/dev/null 2>&1 || echo state-denied; "
                 "ls %s >/dev/null 2>&1 || echo spool-denied; id -un"
                 % (secret_cfg, cfg["stateDir"], cfg["spoolDir"]))
        pool.cli("job", "add", ws.write_json("job.json", {
            "id": "uj", "jobPreparationTask": {"commandLine": show("id -un")}}))
        pool.cli("task", "add", "uj", ws.write_json("t.json", {"id": "probe",
                                                                "commandLine": show(probe)}))
        rc, out, err = pool.cli("wait", "uj", "--timeout", "PT2M", timeout=200)
        so = read(os.path.join(cfg["nodeRoot"], "workitems/uj/job-1/probe/stdout.txt"))
        check(so.split() == ["config-denied", "state-denied", "spool-denied", "_azbatch"],
              "a daemon's task cannot read the configuration, the state dir or the spool",
              (so, rc, err[-500:], pool.log("node1")[-1500:]))
        startup = os.path.join(cfg["nodeRoot"], "startup")
        check(read(os.path.join(startup, "stdout.txt")) == "_azbatchtask_start\n",
              "a task-scope start task runs as _azbatchtask_start")
        st = os.stat(startup)
        check(pwd.getpwuid(st.st_uid).pw_name == "_azbatchtask_start" and
              st.st_mode & 0o777 == 0o755,
              "the startup dir belongs to the start task's user, readable by all",
              (st.st_uid, oct(st.st_mode)))
        prep = os.path.join(cfg["nodeRoot"], "workitems/uj/job-1/jobpreparation")
        st = os.stat(prep)
        check(read(os.path.join(prep, "stdout.txt")) == "_azbatch\n" and
              pwd.getpwuid(st.st_uid).pw_name == "_azbatch" and st.st_mode & 0o777 == 0o755,
              "the job preparation dir belongs to its user, readable by all",
              (st.st_uid, oct(st.st_mode)))
        for d in (cfg["stateDir"], cfg["spoolDir"]):
            check(os.stat(d).st_mode & 0o007 == 0, "%s is closed to others" % d,
                  oct(os.stat(d).st_mode))
    finally:
        pool.stop()

    # -- not root: tasks run as batchd's own user, said once -----------------
    nobody = pwd.getpwnam("nobody")
    home = os.path.join(ws.dir, "nobody")
    os.mkdir(home)
    os.chown(home, nobody.pw_uid, nobody.pw_gid)
    task = ws.write("nobody/task.json", json.dumps({"id": "me", "commandLine": WHO,
                                                     "userIdentity": {"autoUser": {"scope": "task"}}}))
    os.chown(task, nobody.pw_uid, nobody.pw_gid)
    p = subprocess.run(["runuser", "-u", "nobody", "--", BATCHD, "run", "--root",
                        os.path.join(home, "root"), task], capture_output=True, text=True,
                       cwd=home, timeout=120)
    so = lines(os.path.join(home, "root/workitems/job/job-1/me/stdout.txt"))
    check(p.returncode == 0 and so[:1] == ["nobody"], "as a normal user, the task runs as that user",
          (so, p.stderr[-800:]))
    check(so[2:] == ["nobody TaskNonAdmin nobody"], "its identity variables still follow userIdentity",
          so)
    check(p.stderr.count("not root") == 1, "and batchd says so once", p.stderr[-800:])

cleanup()
finish()
