"""The database never disagrees with its replies: writes attempted while
the state dir's disk is full (a small tmpfs filled up) or while SQLite's
writes fail (the store's fault shim, XAPID_SQLITE_FAULTS) either succeed
and survive kill -9, or fail with a XenAPI error and leave no trace: not in
memory (reads, events) and not after a restart."""
import os
import random
import shutil
import subprocess
import tempfile

import pytest

from xapid_daemon import Daemon, err, ok

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounts a tmpfs")

BIG = "x" * 60_000  # long names, so that the WAL must grow


class Model:
    """What the replies said: the name of each VM that exists."""

    def __init__(self):
        self.names = {}
        self.attempted = 0
        self.failed = []

    def write(self, api, s, rng):
        self.attempted += 1
        vms = sorted(self.names)
        op = rng.choice(["create", "rename", "rename", "destroy", "other_config"]
                        if vms else ["create"])
        if op == "create":
            name = f"vm-{self.attempted}-" + BIG[: rng.randrange(0, len(BIG))]
            reply = api.VM.create(s, {"name_label": name})
            if reply["Status"] == "Success":
                self.names[reply["Value"]] = name
        elif op == "rename":
            vm = rng.choice(vms)
            name = f"renamed-{self.attempted}-" + BIG[: rng.randrange(0, len(BIG))]
            reply = api.VM.set_name_label(s, vm, name)
            if reply["Status"] == "Success":
                self.names[vm] = name
        elif op == "destroy":
            vm = rng.choice(vms)
            reply = api.VM.destroy(s, vm)
            if reply["Status"] == "Success":
                del self.names[vm]
        else:
            vm = rng.choice(vms)
            reply = api.VM.add_to_other_config(s, vm, f"k{self.attempted}", BIG)
        if reply["Status"] != "Success":
            self.failed.append(reply["ErrorDescription"])
        return reply

    def disagreements(self, api, s):
        """Objects whose state differs from what the replies said."""
        records = ok(api.VM.get_all_records(s))
        held = {ref: r["name_label"] for ref, r in records.items()
                if not r["is_control_domain"] and not r["is_a_template"]}
        # A failed write's operation lock is released like any other.
        assert all(r["current_operations"] == {} for r in records.values())
        return {ref for ref in set(held) | set(self.names)
                if held.get(ref) != self.names.get(ref)}


def vm_events_since(api, s, token):
    reply = ok(getattr(api.event, "from")(s, ["vm"], token, 0.05))
    return reply["events"], reply["token"]


def write_and_check_events(model, api, s, rng, token):
    """One write; no event may show what the replies did not say (a failed
    write's operation lock is taken and released in writes of their own,
    whose events show the object unchanged)."""
    model.write(api, s, rng)
    events, new_token = vm_events_since(api, s, token)
    for e in events:
        if e["operation"] == "del":
            assert e["ref"] not in model.names, e
        else:
            assert model.names.get(e["ref"]) == e["snapshot"]["name_label"], e
    return new_token


def fill(path):
    """Writes a file until the disk is full; returns its path."""
    filler = os.path.join(path, "filler")
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    return filler


@pytest.fixture
def tmpfs():
    mount = tempfile.mkdtemp(prefix="xapid-tmpfs-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", mount], check=True)
    yield mount
    subprocess.run(["umount", "-l", mount], check=True)
    os.rmdir(mount)


def test_full_disk_writes_fail_cleanly_and_work_again(tmpfs):
    state = os.path.join(tmpfs, "state")
    os.mkdir(state)
    d = Daemon(state_dir=state, extra_args=["--hypervisor", "sim"])
    try:
        api, s = d.login()
        model, rng = Model(), random.Random(12)
        for _ in range(10):
            ok(model.write(api, s, rng))
        _, token = vm_events_since(api, s, "")

        filler = fill(tmpfs)
        for _ in range(150):
            token = write_and_check_events(model, api, s, rng, token)
        out_of_space = [e for e in model.failed if e[0] == "OUT_OF_SPACE"]
        assert out_of_space, model.failed[:3]
        assert all(e[0] == "OUT_OF_SPACE" for e in model.failed), model.failed[:3]
        # Reads keep working and agree with the replies.
        assert model.disagreements(api, s) == set()

        # Space comes back: writes work again without a restart.
        os.unlink(filler)
        failures = len(model.failed)
        for _ in range(20):
            ok(model.write(api, s, rng))
        assert len(model.failed) == failures

        d.kill9()
        d.start()
        api, s = d.login()
        assert model.disagreements(api, s) == set()
        print(f"\nfull disk: {model.attempted} writes, {len(out_of_space)} OUT_OF_SPACE, "
              f"0 replies that disagree after kill -9")
    finally:
        d.stop()


def test_io_errors_leave_no_trace_after_restart():
    state = tempfile.mkdtemp(prefix="xapid-test-")
    faults = os.path.join(state, "faults")
    os.environ["XAPID_SQLITE_FAULTS"] = faults
    try:
        d = Daemon(state_dir=state, extra_args=["--hypervisor", "sim"])
    finally:
        del os.environ["XAPID_SQLITE_FAULTS"]
    try:
        api, s = d.login()
        model, rng = Model(), random.Random(7)
        for _ in range(10):
            ok(model.write(api, s, rng))
        _, token = vm_events_since(api, s, "")
        with open(faults, "w") as f:
            f.write("random 25 99")
        for _ in range(300):
            token = write_and_check_events(model, api, s, rng, token)
            if model.attempted % 50 == 0:
                assert model.disagreements(api, s) == set()
        with open(faults, "w") as f:
            f.write("")
        assert model.failed, "the fault shim failed no write"
        assert all(e[0] == "INTERNAL_ERROR" for e in model.failed), [
            e for e in model.failed if e[0] != "INTERNAL_ERROR"][:3]
        assert model.disagreements(api, s) == set()
        ok(model.write(api, s, rng))

        d.kill9()
        d.start()
        api, s = d.login()
        assert model.disagreements(api, s) == set()
        print(f"\nI/O errors: {model.attempted} writes, {len(model.failed)} failed, "
              f"0 replies that disagree after kill -9")
    finally:
        d.stop()
        shutil.rmtree(state, ignore_errors=True)
