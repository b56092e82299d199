# SPDX-License-Identifier: MIT
"""The Debian and RPM packages, built from this tree.

- packaging/build-deb.sh builds the .deb with dpkg-buildpackage, and
  lintian finds no error in it (the script fails otherwise).
- The .deb holds what `meson install` installs, in the places a Debian
  system wants them, and the configuration as a 0640 conffile; it depends
  on libcurl4, libssl3 and libarchive13 (loaded with dlopen); its
  maintainer scripts create the users and directories and restart the
  service after an upgrade without stopping it before.
- packaging/build-rpm.sh builds the .rpm with rpmbuild; its file list,
  %config(noreplace) configuration, dependencies and scriptlets say the
  same.

Runs in the gcc tree only (the packages are built with their own flags,
not the tree's); skipped (77) when the packaging tools are missing.
"""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SOURCE_ROOT, check, finish  # noqa: E402

if os.environ.get("BATCHD_SANITIZE", "none") not in ("", "none"):
    print("skip: packages are tested in the gcc tree")
    sys.exit(77)
if not shutil.which("dpkg-buildpackage") or not shutil.which("dh"):
    print("skip: dpkg-dev and debhelper are not installed")
    sys.exit(77)

# What meson installs, relative to the prefix /usr: the packages must ship
# each of these (Debian moves the unit to /lib/systemd/system).
MESON_FILES = [
    "usr/sbin/batchd",
    "usr/libexec/batchd/batchd-supervise",
    "usr/lib/systemd/system/batchd.service",
    "usr/lib/sysusers.d/batchd.conf",
    "usr/lib/tmpfiles.d/batchd.conf",
    "usr/share/batchd/batchd.json",
    "usr/share/man/man8/batchd.8",
    "usr/share/man/man5/batchd.json.5",
]


def run(*args, **kw):
    return subprocess.run(list(args), capture_output=True, text=True, **kw)


def meson_install_list(tmp):
    """Files a `meson install` of a fresh packaging-like build puts in DESTDIR."""
    build = os.path.join(tmp, "mbuild")
    dest = os.path.join(tmp, "dest")
    p = run("meson", "setup", "--prefix=/usr", "-Dtests=false", build, SOURCE_ROOT,
            timeout=300)
    check(p.returncode == 0, "meson setup -Dtests=false", p.stdout[-500:] + p.stderr[-500:])
    p = run("meson", "install", "-C", build, "--destdir", dest, timeout=600)
    check(p.returncode == 0, "meson install", p.stdout[-500:] + p.stderr[-500:])
    out = []
    for d, _, files in os.walk(dest):
        for f in files:
            out.append(os.path.relpath(os.path.join(d, f), dest))
    return sorted(out)


with tempfile.TemporaryDirectory(prefix="batchd-pkg-") as tmp:
    installed = meson_install_list(tmp)
    check(installed == sorted(MESON_FILES), "meson installs the files the packages ship",
          installed)

    # --- Debian ---------------------------------------------------------
    p = run("bash", os.path.join(SOURCE_ROOT, "packaging", "build-deb.sh"),
            os.path.join(tmp, "out"), timeout=1200)
    check(p.returncode == 0, "build-deb.sh builds the .deb, lintian finds no error",
          p.stderr[-3000:])
    deb = p.stdout.strip().splitlines()[-1] if p.returncode == 0 else None
    warnings = [line for line in p.stderr.splitlines() if line.startswith("W: ")]
    print("lintian warnings: %d" % len(warnings))
    for w in warnings:
        print("  " + w)
    if deb:
        listing = run("dpkg-deb", "-c", deb).stdout.splitlines()
        files = {}
        for line in listing:
            parts = line.split()
            files[parts[-1][2:] if parts[-1].startswith("./") else parts[-1]] = parts[0]
        want = [f.replace("usr/lib/systemd/system", "lib/systemd/system")
                for f in MESON_FILES]
        want = [f + ".gz" if "/man/" in f else f for f in want]
        for f in want + ["etc/batchd/batchd.json", "usr/share/doc/batchd/copyright"]:
            check(f in files, "deb ships " + f)
        check(files.get("etc/batchd/batchd.json") == "-rw-r-----",
              "deb: the configuration is 0640", files.get("etc/batchd/batchd.json"))
        check(files.get("usr/sbin/batchd", "").startswith("-rwxr-xr-x"), "deb: the binary is 0755")
        check(files.get("etc/batchd/") == "drwxr-x---",
              "deb: /etc/batchd is 0750 as the unit's ConfigurationDirectoryMode",
              files.get("etc/batchd/"))
        unexpected = [f for f in files if f and not f.endswith("/") and
                      f not in want + ["etc/batchd/batchd.json",
                                       "usr/share/doc/batchd/copyright",
                                       "usr/share/doc/batchd/changelog.gz"]]
        check(unexpected == [], "deb ships nothing else", unexpected)

        ctl = os.path.join(tmp, "ctl")
        run("dpkg-deb", "-e", deb, ctl)

        def read(name):
            path = os.path.join(ctl, name)
            return open(path).read() if os.path.exists(path) else ""
        control = read("control")
        depends = [d.strip() for d in
                   next((line for line in control.splitlines() if line.startswith("Depends:")),
                        "Depends:")[len("Depends:"):].split(",")]
        for dep in ("libcurl4", "libssl3", "libarchive13", "libuv1", "libcjson1"):
            check(any(d.split()[0] == dep for d in depends if d), "deb depends on " + dep,
                  depends)
        check(read("conffiles").split() == ["/etc/batchd/batchd.json"],
              "deb: /etc/batchd/batchd.json is its conffile", read("conffiles"))
        postinst, prerm = read("postinst"), read("prerm")
        check("systemd-sysusers" in postinst and "batchd.conf" in postinst,
              "deb postinst creates the task users")
        check("systemd-tmpfiles" in postinst, "deb postinst creates the directories")
        check("deb-systemd-helper enable 'batchd.service'" in postinst,
              "deb postinst enables the service")
        check("_dh_action=restart" in postinst, "deb postinst restarts on upgrade")
        check('"$1" = remove' in prerm and "upgrade" not in prerm,
              "deb prerm stops the service on removal only, not before an upgrade", prerm)

    # --- RPM --------------------------------------------------------------
    if not shutil.which("rpmbuild"):
        print("skip rpm: rpmbuild is not installed")
    else:
        p = run("bash", os.path.join(SOURCE_ROOT, "packaging", "build-rpm.sh"),
                os.path.join(tmp, "out"), timeout=1200)
        check(p.returncode == 0, "build-rpm.sh builds the .rpm", p.stderr[-3000:])
        rpm = p.stdout.strip().splitlines()[-1] if p.returncode == 0 else None
        if rpm:
            files = run("rpm", "-qlp", rpm).stdout.split()
            for f in MESON_FILES + ["etc/batchd/batchd.json"]:
                check(any(x.lstrip("/") in (f, f + ".gz") for x in files), "rpm ships " + f)
            check(run("rpm", "-qp", "--configfiles", rpm).stdout.split() ==
                  ["/etc/batchd/batchd.json"], "rpm: the configuration is its config file")
            dump = run("rpm", "-qp", "--dump", rpm).stdout
            conf = next((line for line in dump.splitlines()
                         if line.startswith("/etc/batchd/batchd.json ")), "")
            # path size mtime digest mode owner group isconfig ...
            check(conf.split()[4:5] == ["0100640"] and conf.split()[7:8] == ["1"],
                  "rpm: the configuration is 0640 and a config file", conf)
            spec = open(os.path.join(SOURCE_ROOT, "packaging", "rpm", "batchd.spec")).read()
            check("%config(noreplace)" in spec, "rpm keeps a changed configuration on upgrade")
            requires = run("rpm", "-qp", "--requires", rpm).stdout.split("\n")
            for dep in ("libcurl", "openssl-libs", "libarchive"):
                check(dep in [r.strip() for r in requires], "rpm requires " + dep)
            scripts = run("rpm", "-qp", "--scripts", rpm).stdout
            check("systemd-sysusers" in scripts and "systemd-tmpfiles" in scripts,
                  "rpm %post creates the users and directories")
            check("try-restart batchd.service" in scripts,
                  "rpm %postun restarts the service after an upgrade")
finish()
