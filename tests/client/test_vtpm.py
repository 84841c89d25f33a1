"""XAPI's VTPM class on the sim driver: VTPM.create and VTPM.destroy with
xapi_vtpm.ml's checks, VM.VTPMs, allowed_operations following the VM's
power state, platform:vtpm=true giving a VTPM at VM.start, and the TPM
state directories going with their VTPMs."""
import os

import pytest

from sim_daemon import api, daemon  # noqa: F401 (fixtures)
from xapid_daemon import err, new_vm, ok

pytestmark = pytest.mark.timeout(60)


def state_dir(daemon, proxy, s, vtpm):
    return os.path.join(daemon.state_dir, "vtpm", ok(proxy.VTPM.get_uuid(s, vtpm)))


def test_create_and_destroy_with_xapi_checks(daemon, api):
    proxy, s = api
    vm = new_vm(api, "vtpm")
    assert "create_vtpm" in ok(proxy.VM.get_allowed_operations(s, vm))
    vtpm = ok(proxy.VTPM.create(s, vm, True))
    rec = ok(proxy.VTPM.get_record(s, vtpm))
    assert rec["VM"] == vm and rec["is_unique"] is True and rec["is_protected"] is False
    assert rec["persistence_backend"] == "xapi" and rec["backend"] == "OpaqueRef:NULL"
    assert rec["allowed_operations"] == ["destroy"]
    assert ok(proxy.VM.get_VTPMs(s, vm)) == [vtpm]
    # one per VM (XAPI's assert_no_vtpm_associated)
    assert "create_vtpm" not in ok(proxy.VM.get_allowed_operations(s, vm))
    assert err(proxy.VTPM.create(s, vm, False)) == ["VTPM_MAX_AMOUNT_REACHED", "1"]
    assert err(proxy.VTPM.create(s, "OpaqueRef:nope", False)) == \
        ["HANDLE_INVALID", "VM", "OpaqueRef:nope"]
    # the TPM runs with the VM: no destroy while it does
    ok(proxy.VM.start(s, vm, False, False))
    assert os.path.isdir(state_dir(daemon, proxy, s, vtpm))
    assert ok(proxy.VTPM.get_allowed_operations(s, vtpm)) == []
    assert err(proxy.VTPM.destroy(s, vtpm)) == ["VM_BAD_POWER_STATE", vm, "halted, suspended",
                                                "running"]
    ok(proxy.VM.hard_shutdown(s, vm))
    assert ok(proxy.VTPM.get_allowed_operations(s, vtpm)) == ["destroy"]
    path = state_dir(daemon, proxy, s, vtpm)
    ok(proxy.VTPM.destroy(s, vtpm))
    assert not os.path.exists(path)  # the state goes with it
    assert ok(proxy.VM.get_VTPMs(s, vm)) == []
    assert err(proxy.VTPM.get_record(s, vtpm))[0] == "HANDLE_INVALID"
    ok(proxy.VM.destroy(s, vm))


def test_create_on_a_template_as_xapi(api):
    """XAPI's VTPM.create takes no VM operation: a (halted) template gets one."""
    proxy, s = api
    vm = new_vm(api, "vtpm template", is_a_template=True)
    vtpm = ok(proxy.VTPM.create(s, vm, False))
    assert ok(proxy.VM.get_VTPMs(s, vm)) == [vtpm]
    ok(proxy.VM.destroy(s, vm))


def test_create_on_a_running_vm_is_refused(api):
    proxy, s = api
    vm = new_vm(api, "vtpm running")
    ok(proxy.VM.start(s, vm, False, False))
    assert err(proxy.VTPM.create(s, vm, False)) == ["VM_BAD_POWER_STATE", vm, "halted",
                                                    "running"]
    assert ok(proxy.VM.get_VTPMs(s, vm)) == []
    ok(proxy.VM.hard_shutdown(s, vm))
    ok(proxy.VM.destroy(s, vm))


def test_platform_vtpm_gives_a_vtpm_at_start_and_vm_destroy_takes_it(daemon, api):
    """XAPI's start (xapi_xenops.ml tpm_of_vm): platform:vtpm=true and no
    VTPM: one is made, is_unique false; VM.destroy destroys it."""
    proxy, s = api
    vm = new_vm(api, "platform vtpm", platform={"vtpm": "true"})
    ok(proxy.VM.start(s, vm, False, False))
    vtpms = ok(proxy.VM.get_VTPMs(s, vm))
    assert len(vtpms) == 1 and ok(proxy.VTPM.get_is_unique(s, vtpms[0])) is False
    path = state_dir(daemon, proxy, s, vtpms[0])
    ok(proxy.VM.hard_shutdown(s, vm))
    ok(proxy.VM.start(s, vm, False, False))  # the same one the next time
    assert ok(proxy.VM.get_VTPMs(s, vm)) == vtpms
    ok(proxy.VM.hard_shutdown(s, vm))
    ok(proxy.VM.destroy(s, vm))
    assert err(proxy.VTPM.get_record(s, vtpms[0]))[0] == "HANDLE_INVALID"
    assert not os.path.exists(path)


@pytest.mark.parametrize("unique", [False, True])
def test_clone_copies_the_vtpm_unless_unique(daemon, api, unique):
    """XAPI's Xapi_vtpm.copy: the clone's VTPM has the same TPM state, a
    unique one a new TPM."""
    proxy, s = api
    vm = new_vm(api, "vtpm clone")
    vtpm = ok(proxy.VTPM.create(s, vm, unique))
    ok(proxy.VM.start(s, vm, False, False))
    ok(proxy.VM.hard_shutdown(s, vm))
    state = os.path.join(state_dir(daemon, proxy, s, vtpm), "tpm2-state")
    with open(state, "wb") as f:  # as swtpm would have left it
        f.write(b"tpm state")
    clone = ok(proxy.VM.clone(s, vm, "the clone"))
    copies = ok(proxy.VM.get_VTPMs(s, clone))
    assert len(copies) == 1 and copies[0] != vtpm
    assert ok(proxy.VTPM.get_is_unique(s, copies[0])) is unique
    copied = os.path.join(state_dir(daemon, proxy, s, copies[0]), "tpm2-state")
    if unique:
        assert not os.path.exists(copied)
    else:
        with open(copied, "rb") as f:
            assert f.read() == b"tpm state"
    ok(proxy.VM.destroy(s, clone))
    ok(proxy.VM.destroy(s, vm))
