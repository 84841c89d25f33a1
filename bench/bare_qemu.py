"""bare_qemu.py: the test guest in bare QEMU processes (no xapid), and a
live migration between two of them over a socketpair handed to both with
QMP getfd (QEMU's fd: URI), as xapid's driver does it. The peer of
bench/vm_migrate.py and the harness of bench/migrate_tcg_trials.py."""
import array
import json
import os
import select
import shutil
import socket
import subprocess
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GUEST_DIR = os.environ.get("XAPID_TEST_GUEST", os.path.join(REPO, "build", "test-guest"))
MiB = 1 << 20


class Qmp:
    """One QMP connection: commands with optional descriptors, events kept."""

    def __init__(self, path, timeout=30):
        deadline = time.time() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                self.sock.close()
                if time.time() > deadline:
                    raise
                time.sleep(0.02)
        self.buf = b""
        self.events = []
        self._line()
        self.cmd("qmp_capabilities")

    def _line(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("QMP closed")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, name, fd=None, **args):
        msg = json.dumps({"execute": name, "arguments": args} if args else {"execute": name})
        if fd is not None:
            self.sock.sendmsg([msg.encode() + b"\n"],
                              [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])
        else:
            self.sock.sendall(msg.encode() + b"\n")
        while True:
            reply = self._line()
            if "event" in reply:
                self.events.append(reply)
                continue
            if "error" in reply:
                raise RuntimeError(f"{name}: {reply['error']['desc']}")
            return reply["return"]

    def close(self):
        self.sock.close()


class Serial:
    """The guest's serial port (a unix socket chardev): lines in and out."""

    def __init__(self, path, timeout=30):
        deadline = time.time() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                self.sock.close()
                if time.time() > deadline:
                    raise
                time.sleep(0.02)
        self.text = ""

    def wait(self, needle, timeout=120):
        """The first line after what was consumed containing needle."""
        deadline = time.time() + timeout
        while True:
            i = self.text.find(needle)
            if i >= 0:
                j = self.text.find("\n", i)
                if j >= 0:
                    line = self.text[i:j].strip()
                    self.text = self.text[j + 1:]
                    return line
            left = deadline - time.time()
            if left <= 0:
                raise TimeoutError(f"no {needle!r} on the serial port")
            r, _, _ = select.select([self.sock], [], [], left)
            if r:
                data = self.sock.recv(65536)
                if not data:
                    raise EOFError("serial closed")
                self.text += data.decode(errors="replace")

    def send(self, line):
        self.sock.sendall(line.encode() + b"\n")

    def close(self):
        self.sock.close()


def guest_args(memtest=None):
    args = "console=ttyS0 quiet panic=-1 cryptomgr.notests"
    if memtest:
        args += " xapid.memtest=" + memtest
    return args


class BareQemu:
    """A test guest in a qemu-system-x86_64 of its own."""

    def __init__(self, workdir, name, memtest="64", memory_mib=256, incoming=False,
                 accel="tcg", qemu="qemu-system-x86_64", extra=(), env=None):
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir, exist_ok=True)
        qmp_path = os.path.join(self.dir, "qmp.sock")
        serial_path = os.path.join(self.dir, "serial.sock")
        for p in (qmp_path, serial_path):
            if os.path.exists(p):
                os.unlink(p)
        # "tcg,thread=single": accelerator options need -accel, not -machine.
        machine = ["-machine", "pc", "-accel", accel] if "," in accel else \
            ["-machine", "pc,accel=" + accel]
        argv = [qemu, "-name", name, *machine,
                "-cpu", "qemu64,+ssse3,+sse4.1,+sse4.2,+popcnt", "-m", str(memory_mib),
                "-smp", "1", "-nodefaults", "-no-user-config", "-display", "none",
                "-kernel", os.path.join(GUEST_DIR, "vmlinuz"),
                "-initrd", os.path.join(GUEST_DIR, "initrd.img"),
                "-append", guest_args(memtest),
                "-chardev", f"socket,id=ser,path={serial_path},server=on,wait=off",
                "-serial", "chardev:ser",
                "-chardev", f"socket,id=qmp,path={qmp_path},server=on,wait=off",
                "-mon", "chardev=qmp,mode=control"] + list(extra)
        if incoming:
            argv += ["-incoming", "defer"]
        self.log = open(os.path.join(self.dir, "qemu.log"), "wb")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.qmp = Qmp(qmp_path)
        self.serial = Serial(serial_path)

    def stop(self):
        for c in (self.qmp, self.serial):
            try:
                c.close()
            except Exception:
                pass
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.log.close()

    def memcheck(self, timeout=60):
        """(ok, bad pages, pages, sum) from the guest's memory tester."""
        self.serial.send("memcheck")
        words = self.serial.wait("XAPID-GUEST-MEMCHECK", timeout).split()
        return words[1] == "ok", int(words[2]), int(words[3]), words[5]


def wait_migration(qmp, timeout=300):
    """Polls query-migrate on the source until it ends; its last answer."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        info = qmp.cmd("query-migrate")
        if info.get("status") in ("completed", "failed", "cancelled"):
            return info
        if info.get("status") == "pre-switchover":  # capability pause-before-switchover
            qmp.cmd("migrate-continue", state="pre-switchover")
        time.sleep(0.005)
    raise TimeoutError("migration did not end")


def migrate(src, dst, live=True, capabilities=None, parameters=None):
    """Moves src's guest into dst (started with incoming=True) over a
    socketpair. Returns (query-migrate's last answer, wall seconds from the
    migrate command to the destination running)."""
    a, b = socket.socketpair()
    try:
        dst.qmp.cmd("getfd", fd=b.fileno(), fdname="migrate")
        src.qmp.cmd("getfd", fd=a.fileno(), fdname="migrate")
    finally:
        a.close()
        b.close()
    caps = [{"capability": k, "state": v} for k, v in (capabilities or {}).items()]
    if caps:
        src.qmp.cmd("migrate-set-capabilities", capabilities=caps)
        dst.qmp.cmd("migrate-set-capabilities", capabilities=caps)
    if parameters:
        src.qmp.cmd("migrate-set-parameters", **parameters)
    dst.qmp.cmd("migrate-incoming", uri="fd:migrate")
    t0 = time.monotonic()
    if not live:
        src.qmp.cmd("stop")
    src.qmp.cmd("migrate", uri="fd:migrate")
    info = wait_migration(src.qmp)
    if info["status"] == "completed":
        deadline = time.time() + 60
        while dst.qmp.cmd("query-status")["status"] != "running":
            if time.time() > deadline:
                raise TimeoutError("destination did not run")
            if not live:
                dst.qmp.cmd("cont")
            time.sleep(0.002)
    return info, time.monotonic() - t0


def workdir(prefix):
    d = os.path.join("/tmp", f"{prefix}-{os.getpid()}")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d
