"""VM.pool_migrate of the real test guest between two xapids, each in a
network namespace of its own (its eth0 on one LAN bridge, in a third
namespace that holds 10.99.3.1): a pool of two QEMU hosts, a shared SR
in a directory both see, the guest with a disk there and a VIF on the
management network (macvtap on each host's eth0). The guest pings the
LAN once a second across the move (the lost ones are counted); the
memory its tester filled has the same checksum after the move; the image
is then held by the destination's QEMU alone; nothing is left behind."""
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from netns import ip, links, unix_proxy
from test_network import NsDaemon
from test_network_qemu import GUEST_DIR, console, guest_vm, wait_console
from xapid_daemon import PASSWORD, REPO, free_port, ok, wait_until

pytestmark = pytest.mark.timeout(900)

MiB = 1 << 20
LAN = "10.99.3.1"
GUEST_IP = "10.99.3.50"


class Ns:
    def __init__(self, name):
        self.name = name


@pytest.fixture(scope="module")
def lan():
    if os.geteuid() != 0 or not os.path.exists("/dev/net/tun"):
        pytest.skip("namespaces, bridges and macvtaps need root")
    subprocess.run([os.path.join(REPO, "scripts", "build-test-guest"), GUEST_DIR], check=True,
                   stdout=subprocess.DEVNULL)
    tag = os.getpid()
    names = {"lan": f"xapid-l{tag}", 2: f"xapid-a{tag}", 3: f"xapid-b{tag}"}
    try:
        for ns in names.values():
            ip("ip", "netns", "add", ns)
        ip("ip", "link", "add", "lan", "type", "bridge", ns=names["lan"])
        ip("ip", "addr", "add", f"{LAN}/24", "dev", "lan", ns=names["lan"])
        ip("ip", "link", "set", "lan", "up", ns=names["lan"])
        for n in (2, 3):
            ns = names[n]
            ip("ip", "link", "add", "eth0", "type", "veth", "peer", "name", f"up{n}", "netns",
               names["lan"], ns=ns)
            ip("ip", "link", "set", "lo", "up", ns=ns)
            ip("ip", "addr", "add", f"10.99.3.{n}/24", "dev", "eth0", ns=ns)
            ip("ip", "link", "set", "eth0", "up", ns=ns)
            ip("ip", "route", "add", "default", "via", LAN, ns=ns)
            ip("ip", "link", "set", f"up{n}", "master", "lan", "up", ns=names["lan"])
        yield names
    finally:
        for ns in names.values():
            ip("ip", "netns", "del", ns, check=False)
        left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert not any(ns in left for ns in names.values())


def unix_login(d):
    """A session over d's unix socket (a member's is the pool's too)."""
    return ok(unix_proxy(d.sock).session.login_with_password("root", PASSWORD))


def member_ready(d):
    try:
        reply = unix_proxy(d.sock).session.login_with_password("root", PASSWORD)
    except OSError:
        return False  # restarting
    if reply["Status"] != "Success":
        return False  # HOST_STILL_BOOTING
    return len(ok(unix_proxy(d.sock).host.get_all(reply["Value"]))) == 2


@pytest.fixture(scope="module")
def pool(lan):
    port = free_port()
    shared = tempfile.mkdtemp(prefix="xapid-shared-")
    hosts = []
    try:
        for n in (2, 3):
            hosts.append(NsDaemon(Ns(lan[n]), "qemu",
                                  ["--guest-kernel-dir", GUEST_DIR, "--sr-root", shared,
                                   "--member-timeout", "10"], listen=f"10.99.3.{n}:{port}"))
        a, b = hosts
        api = unix_proxy(b.sock)
        ok(api.pool.join(unix_login(b), "10.99.3.2", "root", PASSWORD))
        wait_until(lambda: member_ready(b), timeout=120, what="b a member of a's pool")
        yield {"a": a, "b": b, "shared": shared}
    finally:
        for d in hosts:
            d.stop()
            shutil.rmtree(d.state_dir, ignore_errors=True)
        shutil.rmtree(shared, ignore_errors=True)


class Serial:
    """The guest's vt100 console through xapid (CONNECT over the unix
    socket): what it prints, and lines typed to it."""

    def __init__(self, d, api, s, vm):
        consoles = [ok(api.console.get_record(s, c)) for c in ok(api.VM.get_consoles(s, vm))]
        uuid = next(c["uuid"] for c in consoles if c["protocol"] == "vt100")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(60)
        self.sock.connect(d.sock)
        self.sock.sendall(f"CONNECT /console?uuid={uuid}&session_id={s} HTTP/1.1\r\n"
                          "Host: localhost\r\n\r\n".encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self._more()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head

    def _more(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("the console closed")
        self.buf += chunk

    def ask(self, line, answer):
        """Types line; the first line of the guest's after it holding answer."""
        self.buf = b""
        self.sock.sendall(line.encode() + b"\n")
        pattern = re.compile(re.escape(answer.encode()) + rb"([^\r\n]*)\r*\n")
        while not pattern.search(self.buf):
            self._more()
        return answer + pattern.search(self.buf).group(1).decode()

    def close(self):
        self.sock.close()


def memcheck(d, api, s, vm):
    """The tester's "XAPID-GUEST-MEMCHECK ok|bad BAD PAGES PASS SUM" words."""
    serial = Serial(d, api, s, vm)
    try:
        return serial.ask("memcheck", "XAPID-GUEST-MEMCHECK").split()[1:]
    finally:
        serial.close()


def pings(text):
    return re.findall(r"XAPID-GUEST-PING (ok|lost)", text)


def test_a_real_guest_moves_between_two_hosts_and_keeps_its_memory_and_network(pool):
    a, b, shared = pool["a"], pool["b"], pool["shared"]
    api = unix_proxy(a.sock)
    s = unix_login(a)
    hosts = {ok(api.host.get_address(s, h)): h for h in ok(api.host.get_all(s))}
    a_host, b_host = hosts["10.99.3.2"], hosts["10.99.3.3"]
    location = os.path.join(shared, "sr")
    sr = ok(api.SR.create(s, a_host, {"location": location}, "0", "shared", "", "file", "", True,
                          {}))
    vdi = ok(api.VDI.create(s, {"SR": sr, "virtual_size": str(16 * MiB), "type": "user",
                                "sharable": False, "read_only": False, "other_config": {},
                                "name_label": "the migrant's disk"}))
    image = os.path.join(location, ok(api.VDI.get_location(s, vdi)))
    vm, uuid = guest_vm(api, s, (os.path.join(GUEST_DIR, "vmlinuz"),
                                 os.path.join(GUEST_DIR, "initrd.img")), "migrant",
                        f"xapid.ip={GUEST_IP}/24 xapid.pingloop={LAN} xapid.memtest=32,0")
    ok(api.VBD.create(s, {"VM": vm, "VDI": vdi, "userdevice": "1", "bootable": False,
                          "mode": "RW", "type": "Disk", "empty": False, "other_config": {},
                          "qos_algorithm_type": "", "qos_algorithm_params": {}}))
    management = next(ok(api.PIF.get_network(s, p)) for p in ok(api.host.get_PIFs(s, a_host))
                      if ok(api.PIF.get_management(s, p)))
    ok(api.VIF.create(s, {"VM": vm, "network": management, "device": "0", "MAC": "",
                          "MTU": "1500", "other_config": {}, "qos_algorithm_type": "",
                          "qos_algorithm_params": {}}))
    ok(api.VM.start_on(s, vm, a_host, False, False))
    try:
        wait_console(a, uuid, "XAPID-GUEST-MEMTEST ready", timeout=300)
        wait_until(lambda: pings(console(a, uuid)).count("ok") >= 3, timeout=120,
                   what="the guest's pings answered from a")
        before = memcheck(a, api, s, vm)
        assert before[0] == "ok", before
        started = time.monotonic()
        ok(api.VM.pool_migrate(s, vm, b_host, {"live": "true"}))
        took = time.monotonic() - started
        assert ok(api.VM.get_resident_on(s, vm)) == b_host
        assert ok(api.VM.get_power_state(s, vm)) == "Running"
        at_a = pings(console(a, uuid))
        wait_until(lambda: pings(console(b, uuid)).count("ok") >= 3, timeout=120,
                   what="the guest's pings answered from b")
        after = memcheck(b, api, s, vm)
        assert after[0] == "ok" and after[-1] == before[-1], (before, after)
        lost = at_a.count("lost") + pings(console(b, uuid)).count("lost")
        print(f"\npool_migrate of the real guest: {took:.2f} s, {lost} pings lost "
              f"(of {len(at_a) + len(pings(console(b, uuid)))})")
        # Only b's QEMU has the image open now: a second writer is refused.
        probe = subprocess.run(["qemu-img", "info", "--force-share", image],
                               capture_output=True, text=True)
        assert probe.returncode == 0, probe.stderr
        locked = subprocess.run(["qemu-img", "check", image], capture_output=True, text=True)
        assert locked.returncode != 0 and "lock" in locked.stderr, locked
        assert not [p for p in os.listdir(os.path.join(a.state_dir, "domains"))
                    if os.path.exists(os.path.join(a.state_dir, "domains", p, "qemu.pid"))]
    finally:
        ok(api.VM.hard_shutdown(s, vm))
    ok(api.VM.destroy(s, vm))
    ok(api.VDI.destroy(s, vdi))
    for pbd in ok(api.SR.get_PBDs(s, sr)):
        ok(api.PBD.unplug(s, pbd))
    ok(api.SR.destroy(s, sr))
    for d in (a, b):  # no macvtap or tap left on either host
        wait_until(lambda: links(d.cmd_prefix[-1]) == {"lo", "eth0"}, timeout=30,
                   what=f"{d.cmd_prefix[-1]} back to lo and eth0")
