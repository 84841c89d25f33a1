#!/usr/bin/env python3
"""libvirt as a peer for bench/vm_start.py: the test guest booted as a
transient libvirt domain (`virsh create`), timed from the call until the
guest's ready line in its serial log, and `virsh destroy` until its reply.

Which libvirtd answers:
- If `virsh -c qemu:///system version` works, the host's own libvirtd (as
  configured on the host).
- Otherwise (the usual case here: no systemd as PID 1, so nothing starts
  libvirtd on socket activation) a private one, with the host's files left
  alone. `libvirtd --config` only moves libvirtd.conf: qemu.conf, the state
  and run directories and the sockets are fixed paths for a root daemon
  (/etc/libvirt, /run/libvirt, /var/lib/libvirt, /var/log/libvirt,
  /var/cache/libvirt), and qemu:///session as root is the same system
  daemon. So this file runs itself as a supervisor in a private mount
  namespace (`unshare --mount`), bind-mounts five directories of a
  temporary directory over those paths, and starts virtlogd and libvirtd in
  the foreground there, with pid files in the temporary directory. The
  configuration files are empty, so every libvirt default holds (QEMU as
  user libvirt-qemu, DAC labelling, its mount namespace and seccomp
  sandbox, virtlogd for the serial file, cgroups under /machine, no network
  autostarted); nothing in /etc is read or written. The host only sees
  /run/libvirt created as an empty mount point when it is missing, and the
  /machine cgroup directories libvirt makes, both removed again at the end
  when they were not there before. Clients reach the daemon at
  qemu:///system?socket=TMP/run/libvirt-sock.
- libvirt runs QEMU daemonized (re-parented to init) and `virsh destroy`
  returns only once that pid is gone, polling every 200 ms. In this sandbox
  PID 1 reaps zombies about once a second, which added ~1 s to every
  destroy; on a normal host systemd reaps at once. The supervisor is
  therefore a child subreaper (prctl PR_SET_CHILD_SUBREAPER) that reaps at
  once, as systemd would.

Kernel and initrd are copied into the temporary directory, so libvirt's DAC
driver relabels copies and never the files under build/.

Usage as a supervisor (internal): unshare --mount libvirt_peer.py serve DIR
"""
import ctypes
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

VIRSH = "virsh"
MOUNTS = [("etc", "/etc/libvirt"), ("run", "/run/libvirt"), ("lib", "/var/lib/libvirt"),
          ("log", "/var/log/libvirt"), ("cache", "/var/cache/libvirt")]
PR_SET_CHILD_SUBREAPER = 36


class Skip(Exception):
    """libvirt cannot be measured in this run; the message says why."""


def _tail(text, n=1):
    lines = [ln for ln in (text or "").strip().splitlines() if ln.strip()]
    return " / ".join(lines[-n:]) if lines else "no output"


def ensure_installed():
    """Installs libvirt-daemon-system and libvirt-clients if missing; raises Skip."""
    if shutil.which(VIRSH) and os.path.exists("/usr/sbin/libvirtd") and \
            os.path.exists("/usr/sbin/virtlogd"):
        return
    if os.geteuid() != 0:
        raise Skip("libvirt is not installed and installing it needs root")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-qq", "--no-install-recommends",
           "libvirt-daemon-system", "libvirt-clients"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
        r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0 or not shutil.which(VIRSH) or not os.path.exists("/usr/sbin/libvirtd"):
        raise Skip(f"apt-get install libvirt-daemon-system libvirt-clients failed: "
                   f"{_tail(r.stderr or r.stdout)}")


def virsh(uri, *args, timeout=60):
    return subprocess.run([VIRSH, "-q", "-c", uri] + list(args), capture_output=True, text=True,
                          timeout=timeout)


class Libvirt:
    """A libvirtd to talk to: the host's, or a private one (see above)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="bench-libvirt-")
        os.chmod(self.dir, 0o711)  # QEMU runs as libvirt-qemu and must reach DIR/guest
        self.supervisor = None
        self.made_run_dir = False
        self.made_cgroups = []
        self.private = False
        self.domains = []
        try:
            self._connect()
        except (OSError, subprocess.SubprocessError) as e:
            self.close()
            raise Skip(f"libvirtd could not be reached or started: {e}")
        except BaseException:
            self.close()
            raise

    def _connect(self):
        try:
            r = virsh("qemu:///system", "version", timeout=20)
            host_ok = r.returncode == 0
        except subprocess.TimeoutExpired:
            host_ok = False
        if host_ok:
            self.uri = "qemu:///system"
        else:
            self.private = True
            self.uri = f"qemu:///system?socket={self.dir}/run/libvirt-sock"
            self._start_private()
        # The first connection waits for libvirtd to probe QEMU: not timed.
        r = virsh(self.uri, "version", "--daemon", timeout=120)
        if r.returncode != 0:
            raise Skip(f"libvirtd does not answer: {_tail(r.stderr)}{self._log_tail()}")
        self.version = next((ln.split(":", 1)[1].strip() for ln in r.stdout.splitlines()
                             if ln.startswith("Running against daemon")), "?")

    def _log_tail(self):
        path = os.path.join(self.dir, "libvirtd.stderr")
        if os.path.exists(path):
            with open(path, errors="replace") as f:
                return f" (libvirtd: {_tail(f.read())})"
        return ""

    def _start_private(self):
        if shutil.which("unshare") is None:
            raise Skip("no unshare(1) to give a private libvirtd its own mount namespace")
        if not os.path.isdir("/run/libvirt"):
            os.makedirs("/run/libvirt")
            self.made_run_dir = True
        self.made_cgroups = [c for c in _machine_cgroups() if not os.path.isdir(c)]
        errlog = open(os.path.join(self.dir, "supervisor.stderr"), "wb")
        self.supervisor = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", sys.executable,
             os.path.abspath(__file__), "serve", self.dir],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errlog)
        errlog.close()
        ready, _, _ = select.select([self.supervisor.stdout], [], [], 60)
        line = self.supervisor.stdout.readline().decode(errors="replace").strip() if ready else ""
        if line != "ready":
            with open(os.path.join(self.dir, "supervisor.stderr"), errors="replace") as f:
                err = _tail(f.read())
            raise Skip(f"private libvirtd did not start: {line or err}{self._log_tail()}")

    # The domain's shape (bench/vm_start_uefi.py sets 4 vCPUs and 1 GiB).
    memory_mib = 192
    vcpus = 1

    def describe(self):
        return f"libvirt {self.version}, {'private' if self.private else 'host'} libvirtd"

    def prepare_guest(self, kernel, initrd):
        g = os.path.join(self.dir, "guest")
        os.makedirs(g, exist_ok=True)
        os.chmod(g, 0o755)
        self.kernel = shutil.copy(kernel, os.path.join(g, "vmlinuz"))
        self.initrd = shutil.copy(initrd, os.path.join(g, "initrd.img"))

    def domain_xml(self, name, console, args, kvm):
        # As close as libvirt gets to bench/vm_start.py's bare QEMU command:
        # i440fx PC, same accelerator, 192 MiB, 1 vCPU, direct kernel boot, serial
        # to a file, no disk, network, graphics, USB or balloon.
        return f"""<domain type='{"kvm" if kvm else "qemu"}'>
  <name>{name}</name>
  <memory unit='MiB'>{self.memory_mib}</memory>
  <vcpu>{self.vcpus}</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{self.kernel}</kernel>
    <initrd>{self.initrd}</initrd>
    <cmdline>{args}</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <serial type='file'><source path='{console}'/><target port='0'/></serial>
    <console type='file'><source path='{console}'/><target type='serial' port='0'/></console>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
</domain>
"""

    def cycle(self, i, args, kvm, wait_line):
        """One run: (create reply, ready line, destroy reply) in seconds."""
        name = f"xapid-bench-{os.getpid()}-{i}"
        console = os.path.join(self.dir, f"console-{i}.log")
        xml = os.path.join(self.dir, f"{name}.xml")
        with open(xml, "w") as f:
            f.write(self.domain_xml(name, console, args, kvm))
        started = time.perf_counter()
        try:
            r = subprocess.run([VIRSH, "-q", "-c", self.uri, "create", xml], capture_output=True,
                               text=True, timeout=120)
        except subprocess.TimeoutExpired:
            raise Skip("virsh create gave no reply within 120 s")
        replied = time.perf_counter()
        if r.returncode != 0:
            raise Skip(f"virsh create failed: {_tail(r.stderr)}")
        self.domains.append(name)
        try:
            ready = wait_line(console, 1, started + 120)
        except SystemExit as e:
            raise Skip(str(e))
        t = time.perf_counter()
        try:
            r = subprocess.run([VIRSH, "-q", "-c", self.uri, "destroy", name],
                               capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired:
            raise Skip("virsh destroy gave no reply within 120 s")
        destroyed = time.perf_counter()
        if r.returncode != 0:
            raise Skip(f"virsh destroy failed: {_tail(r.stderr)}")
        self.domains.remove(name)
        return replied - started, ready - started, destroyed - t

    def close(self):
        for name in self.domains:
            try:
                virsh(self.uri, "destroy", name, timeout=60)
            except subprocess.TimeoutExpired:
                pass  # the supervisor kills what is left
        if self.supervisor is not None:
            self.supervisor.stdin.close()  # EOF: the supervisor stops what it started
            try:
                self.supervisor.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.supervisor.kill()
                self.supervisor.wait()
            # Whatever survived (only if the supervisor failed): ours by command line.
            for pid in _pids_mentioning(self.dir):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for c in self.made_cgroups:
            try:
                os.rmdir(c)  # only if libvirt left it empty
            except OSError:
                pass
        if self.made_run_dir:
            try:
                os.rmdir("/run/libvirt")
            except OSError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)


def _machine_cgroups():
    """Where libvirt puts its /machine partition: every cgroup mount."""
    found = []
    with open("/proc/self/mounts") as f:
        for line in f:
            fields = line.split()
            if fields[2] in ("cgroup", "cgroup2"):
                found.append(os.path.join(fields[1], "machine"))
    return found


def _pids_mentioning(text):
    pids = []
    for p in os.listdir("/proc"):
        if not p.isdigit() or int(p) == os.getpid():
            continue
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                if text.encode() in f.read():
                    pids.append(int(p))
        except OSError:
            pass
    return pids


# --- the supervisor, run inside `unshare --mount` ---------------------------

def serve(d):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit(f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(ctypes.get_errno())}")
    for sub, target in MOUNTS:
        os.makedirs(os.path.join(d, sub), exist_ok=True)
        subprocess.run(["mount", "--bind", os.path.join(d, sub), target], check=True)
    for conf in ("libvirtd.conf", "qemu.conf", "virtlogd.conf"):
        open(os.path.join(d, "etc", conf), "w").close()  # empty: libvirt's defaults

    exited = {}
    lock = threading.Condition()
    stopping = threading.Event()

    def reaper():  # reaps our children and every orphan re-parented to us, at once
        while True:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                if stopping.is_set():
                    return
                time.sleep(0.05)
                continue
            with lock:
                exited[pid] = status
                lock.notify_all()

    def start(name, sock):
        log = open(os.path.join(d, f"{name}.stderr"), "wb")
        proc = subprocess.Popen([f"/usr/sbin/{name}", "-p", os.path.join(d, f"{name}.pid")],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        procs.append(proc)  # kept: no Popen.__del__ polling behind the reaper's back
        deadline = time.time() + 30
        while not os.path.exists(os.path.join(d, "run", sock)):
            with lock:
                if proc.pid in exited:
                    sys.exit(f"{name} exited early")
            if time.time() > deadline:
                sys.exit(f"{name}: no socket after 30 s")
            time.sleep(0.02)
        return proc.pid

    def stop(pid, timeout=20):
        with lock:
            if pid in exited:
                return
        os.kill(pid, signal.SIGTERM)
        with lock:
            if not lock.wait_for(lambda: pid in exited, timeout):
                os.kill(pid, signal.SIGKILL)
                lock.wait_for(lambda: pid in exited, 5)

    threading.Thread(target=reaper, daemon=True).start()
    procs = []
    started = []
    try:
        started.append(start("virtlogd", "virtlogd-sock"))
        started.append(start("libvirtd", "libvirt-sock"))
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        sys.stdin.read()  # until the bench closes the pipe (or dies)
    finally:
        # QEMUs left behind (the bench destroys its domains first) are our
        # children by now; then libvirtd, then virtlogd.
        me = os.getpid()
        for p in os.listdir("/proc"):
            if p.isdigit() and int(p) not in started:
                try:
                    with open(f"/proc/{p}/stat") as f:
                        ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                    if ppid == me:
                        os.kill(int(p), signal.SIGKILL)
                except (OSError, ValueError, IndexError):
                    pass
        for pid in reversed(started):
            stop(pid)
        stopping.set()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "serve":
        serve(sys.argv[2])
    else:
        sys.exit(__doc__)
