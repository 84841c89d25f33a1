"""Network namespaces for tests: a daemon runs inside one, where a veth is
its NIC, so the host's own links are never touched; everything made here
is removed again (and checked)."""
import http.client
import os
import socket
import subprocess
import xmlrpc.client


def ip(*args, ns=None, check=True):
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(args)
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


def links(ns):
    """Link names in ns."""
    out = ip("ip", "-o", "link", "show", ns=ns).stdout
    return {line.split(": ")[1].split("@")[0] for line in out.splitlines()}


class NetNs:
    """Two namespaces joined by a veth: `name` (the daemon's, where the veth
    is eth0 with 10.99.0.2/24 and the default route) and its peer."""

    def __init__(self):
        tag = f"{os.getpid()}"
        self.name = f"xapid-t{tag}"
        self.peer = f"xapid-p{tag}"
        ip("ip", "netns", "add", self.name)
        ip("ip", "netns", "add", self.peer)
        ip("ip", "link", "add", "eth0", "type", "veth", "peer", "name", "uplink", "netns",
           self.peer, ns=self.name)
        ip("ip", "link", "set", "lo", "up", ns=self.name)
        ip("ip", "addr", "add", "10.99.0.2/24", "dev", "eth0", ns=self.name)
        ip("ip", "link", "set", "eth0", "up", ns=self.name)
        ip("ip", "link", "set", "uplink", "up", ns=self.peer)
        ip("ip", "route", "add", "default", "via", "10.99.0.1", ns=self.name)

    def links(self):
        return links(self.name)

    def remove(self):
        for ns in (self.name, self.peer):
            ip("ip", "netns", "del", ns, check=False)
        left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert self.name not in left and self.peer not in left


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost")
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


class _UnixTransport(xmlrpc.client.Transport):
    def __init__(self, path):
        super().__init__()
        self.path = path

    def make_connection(self, host):
        return _UnixConnection(self.path)


def unix_proxy(path):
    """XML-RPC over xapid's unix socket (pre-authenticated as root), which
    reaches a daemon inside a namespace."""
    return xmlrpc.client.ServerProxy("http://localhost/", transport=_UnixTransport(path))
