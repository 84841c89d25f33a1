"""A LAN of network namespaces for pool tests whose hosts must be cut off
one at a time: a namespace holding a bridge (the switch), and one
namespace per host whose eth0 (10.118.0.N/24, its pool address) is a veth
plugged into that bridge. The test, in the root namespace, reaches each
host over a second veth of its own (10.218.N.2, from 10.218.N.1), which a
cut of the host's LAN link leaves up: a cut-off host can still be asked
what its replica holds. No namespace has a default route, so nothing
crosses from one link to the other. Names start with "pool18" and the
test's pid; everything is removed again (and checked)."""
import os
import subprocess
import tempfile

from netns import ip
from xapid_daemon import Daemon

PORT = 4430  # every namespace is new: the port is free in each


class Lan:
    def __init__(self, hosts):
        tag = os.getpid() % 10000000
        self.tag = tag
        self.lan = f"pool18-lan-{tag}"
        self.ns = {n: f"pool18-h{n}-{tag}" for n in hosts}
        self.access = {n: f"pool18a{n}x{tag}"[:15] for n in hosts}
        try:
            ip("ip", "netns", "add", self.lan)
            ip("ip", "link", "add", "lan", "type", "bridge", ns=self.lan)
            ip("ip", "link", "set", "lan", "up", ns=self.lan)
            for n in hosts:
                ns = self.ns[n]
                ip("ip", "netns", "add", ns)
                ip("ip", "link", "set", "lo", "up", ns=ns)
                ip("ip", "link", "add", "eth0", "type", "veth", "peer", "name", self.port(n),
                   "netns", self.lan, ns=ns)
                ip("ip", "addr", "add", f"10.118.0.{n}/24", "dev", "eth0", ns=ns)
                ip("ip", "link", "set", "eth0", "up", ns=ns)
                ip("ip", "link", "set", self.port(n), "master", "lan", "up", ns=self.lan)
                ip("ip", "link", "add", self.access[n], "type", "veth", "peer", "name", "acc",
                   "netns", ns)
                ip("ip", "addr", "add", f"10.218.{n}.1/30", "dev", self.access[n])
                ip("ip", "link", "set", self.access[n], "up")
                ip("ip", "addr", "add", f"10.218.{n}.2/30", "dev", "acc", ns=ns)
                ip("ip", "link", "set", "acc", "up", ns=ns)
        except Exception:
            self.remove()
            raise

    @staticmethod
    def port(n):
        return f"port{n}"

    def cut(self, n):
        """Unplugs host n's cable at the switch: its eth0 loses its carrier
        and every packet to or from it is lost."""
        ip("ip", "link", "set", self.port(n), "down", ns=self.lan)

    def mend(self, n):
        ip("ip", "link", "set", self.port(n), "up", ns=self.lan)

    def remove(self):
        for name in self.access.values():
            ip("ip", "link", "del", name, check=False)
        for ns in [*self.ns.values(), self.lan]:
            ip("ip", "netns", "del", ns, check=False)
        left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert not any(ns in left for ns in [*self.ns.values(), self.lan]), left
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        assert not any(f" {name}@" in links or f" {name}:" in links
                       for name in self.access.values()), links


class LanHost(Daemon):
    """A sim xapid in host n's namespace: its pool address is 10.118.0.N,
    and it also listens on its access address, where the test calls it."""

    def __init__(self, lan, n, extra_args=()):
        self.n = n
        state = tempfile.mkdtemp(prefix="xapid-pool18-")
        self.sock = os.path.join(state, "xapi.sock")
        self.access_url = f"http://10.218.{n}.2:{PORT}/"
        super().__init__(state_dir=state, listen=f"10.118.0.{n}:{PORT}",
                         cmd_prefix=["ip", "netns", "exec", lan.ns[n]],
                         extra_args=["--listen", f"10.218.{n}.2:{PORT}", "--hypervisor", "sim",
                                     "--unix", self.sock, *extra_args])

    def start(self):
        super().start()
        self.url = self.access_url
