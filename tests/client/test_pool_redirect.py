"""The HTTP handlers of a pool answer 302 to the host that holds the work,
as XAPI's do (Importexport.return_302_redirect, export.ml, import.ml): two
sim daemons on 127.0.0.16 (master) and .17. /export_raw_vdi and
/import_raw_vdi of a VDI on the member's local SR, /import to that SR and
/export of a halted VM with its disk there go to the member, from the
master; the member sends a VDI of the master's SR to the master; /console
of a VM running on the member goes there (GET and CONNECT). Following the
Location serves the request (the session is the pool's)."""
import http.client
import socket
import urllib.parse

import pytest

from test_pool import MiB, host_of, login_member, pool_of_two, vm_with_a_disk_on
from xapid_daemon import ok, wait_until

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def pool():
    with pool_of_two(16, 17) as hosts:
        yield hosts


def request(d, method, path, body=None):
    """(status, Location, body) of one request, redirects not followed."""
    c = http.client.HTTPConnection(d.address, d.port, timeout=30)
    c.request(method, path, body)
    r = c.getresponse()
    out = (r.status, r.getheader("Location"), r.read())
    c.close()
    return out


def put_head(d, path, length=MiB):
    """(status, Location) of a PUT whose body is held back until the
    server answers (as a client waiting for 100 Continue would)."""
    with socket.create_connection((d.address, d.port), timeout=30) as c:
        c.sendall(f"PUT {path} HTTP/1.1\r\nHost: {d.address}\r\n"
                  f"Content-Length: {length}\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            more = c.recv(4096)
            if not more:
                break
            head += more
    lines = head.decode().split("\r\n")
    fields = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), fields.get("Location")


def local_sr(api, host):
    proxy, s = api
    return [p for p in (ok(proxy.PBD.get_record(s, r)) for r in ok(proxy.host.get_PBDs(s, host)))
            if ok(proxy.SR.get_type(s, p["SR"])) == "file"][0]["SR"]


def new_vdi(api, sr):
    proxy, s = api
    return ok(proxy.VDI.create(s, {"SR": sr, "virtual_size": str(1 * MiB), "type": "user",
                                   "sharable": False, "read_only": False, "other_config": {},
                                   "name_label": "redirected"}))


def test_transfers_go_to_the_host_with_the_sr(pool):
    master, b = pool
    api = master.login()
    proxy, s = api
    b_host = host_of(b, api)
    vdi = new_vdi(api, local_sr(api, b_host))
    path = f"/export_raw_vdi?vdi={vdi}&session_id={s}&format=raw"
    status, location, _ = request(master, "GET", path)
    assert (status, location) == (302, f"http://{b.address}:{b.port}{path}")
    # Followed: the member serves it.
    status, _, body = request(b, "GET", urllib.parse.urlsplit(location)[2] + "?" +
                              urllib.parse.urlsplit(location)[3])
    assert status == 200 and body == b"\0" * MiB
    put = f"/import_raw_vdi?vdi={vdi}&session_id={s}&format=raw"
    status, location = put_head(master, put)
    assert (status, location) == (302, f"http://{b.address}:{b.port}{put}")
    assert request(b, "PUT", put, b"x" * MiB)[0] == 200
    assert request(b, "GET", path)[2] == b"x" * MiB
    # The member sends a VDI of the master's SR to the master.
    mine = new_vdi(api, local_sr(api, host_of(master, api)))
    bs = login_member(b)
    wait_until(lambda: mine in ok(b.proxy().VDI.get_all(bs)), what="the VDI in b's replica")
    there = f"/export_raw_vdi?vdi={mine}&session_id={s}"
    status, location, why = request(b, "GET", there)
    assert (status, location) == (302, f"http://{master.address}:{master.port}{there}"), why
    assert request(master, "GET", there)[0] == 200
    # An XVA import to the member's SR, and the export of a VM whose disk
    # is there.
    imp = f"/import?sr_id={local_sr(api, b_host)}&session_id={s}"
    status, location = put_head(master, imp)
    assert (status, location) == (302, f"http://{b.address}:{b.port}{imp}")
    vm = vm_with_a_disk_on(api, b_host)
    exp = f"/export?ref={vm}&session_id={s}"
    status, location, _ = request(master, "GET", exp)
    assert (status, location) == (302, f"http://{b.address}:{b.port}{exp}")
    # Nothing moved at the master: no task left behind by the 302s.
    assert not [t for t in ok(proxy.task.get_all_records(s)).values()
                if t["status"] == "pending"]


def test_a_console_goes_to_the_vms_host(pool):
    master, b = pool
    api = master.login()
    proxy, s = api
    vm = ok(proxy.VM.create(s, {"name_label": "its console is on b",
                                "memory_static_max": str(256 * MiB), "VCPUs_max": "1",
                                "VCPUs_at_startup": "1"}))
    ok(proxy.VM.start_on(s, vm, host_of(b, api), False, False))
    path = f"/console?ref={vm}&session_id={s}"
    status, location, _ = request(master, "GET", path)
    assert (status, location) == (302, f"http://{b.address}:{b.port}{path}")
    with socket.create_connection((master.address, master.port), timeout=30) as c:
        c.sendall(f"CONNECT {path} HTTP/1.0\r\n\r\n".encode())
        head = c.recv(4096).decode()
    assert head.startswith("HTTP/1.0 302") or head.startswith("HTTP/1.1 302"), head
    assert f"Location: http://{b.address}:{b.port}{path}" in head
    ok(proxy.VM.hard_shutdown(s, vm))
