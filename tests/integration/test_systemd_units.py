#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The systemd unit, sysusers and tmpfiles files are valid for systemd."""
import os
import shutil
import subprocess
import sys

from harness import BATCHD, SOURCE_ROOT, Workspace, check, finish, read

if shutil.which("systemd-analyze") is None:
    print("FAIL systemd-analyze is missing (CI installs systemd)")
    sys.exit(1)

with Workspace() as ws:
    unit = read(os.path.join(SOURCE_ROOT, "systemd/batchd.service"))
    check("Type=notify" in unit and "Delegate=yes" in unit and "Restart=on-failure" in unit,
          "unit: notify, delegated cgroups, restart on failure")
    check("KillMode=process" in unit and "kill -USR2" in unit and "list-jobs" in unit,
          "unit: tasks survive a restart (KillMode=process; a restart job sends SIGUSR2)")
    # verify checks that the programs exist: point it at the built binary.
    path = os.path.join(ws.dir, "batchd.service")
    with open(path, "w") as f:
        f.write(unit.replace("/usr/sbin/batchd", BATCHD))
    p = subprocess.run(["systemd-analyze", "verify", "--man=no", path],
                       capture_output=True, text=True)
    check(p.returncode == 0 and p.stderr.strip() == "", "systemd-analyze verify passes",
          p.stderr)
    root = os.path.join(ws.dir, "root")
    os.makedirs(os.path.join(root, "etc"))
    p = subprocess.run(["systemd-sysusers", "--root=" + root,
                        os.path.join(SOURCE_ROOT, "systemd/batchd.sysusers")],
                       capture_output=True, text=True)
    check(p.returncode == 0, "sysusers file applies", p.stderr)
    passwd = read(os.path.join(root, "etc/passwd"))
    check("_azbatch:" in passwd, "the pool task user is created", passwd)
    p = subprocess.run(["systemd-tmpfiles", "--root=" + root, "--create",
                        os.path.join(SOURCE_ROOT, "systemd/batchd.tmpfiles")],
                       capture_output=True, text=True)
    check(p.returncode == 0, "tmpfiles file applies", p.stderr)
    st = os.stat(os.path.join(root, "var/lib/batchd"))
    check(st.st_mode & 0o777 == 0o700, "state directory is private to the agent")
    check(os.path.isdir(os.path.join(root, "mnt/batch/tasks")), "node root created")
finish()
