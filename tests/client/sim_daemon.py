"""The fixtures of the modules that test against one daemon of the sim
hypervisor: `daemon` (one for the module) and `api` (a fresh login on it,
as (proxy, session)), which a module imports by name; and a sim daemon
with an SR root, for a module's own `daemon` fixture."""
import contextlib
import os
import shutil
import tempfile

import pytest

from xapid_daemon import Daemon


@pytest.fixture(scope="module")
def daemon():
    d = Daemon(extra_args=["--hypervisor", "sim"])
    yield d
    d.stop()


@pytest.fixture()
def api(daemon):
    return daemon.login()


@contextlib.contextmanager
def sim_daemon_with_sr_root():
    """A sim daemon whose state dir holds srs/, an --sr-root where tests
    make more SRs; the state dir goes at the end."""
    state = tempfile.mkdtemp(prefix="xapid-test-")
    os.mkdir(os.path.join(state, "srs"))
    d = Daemon(state_dir=state, extra_args=["--hypervisor", "sim",
                                            "--sr-root", os.path.join(state, "srs")])
    try:
        yield d
    finally:
        d.stop()
        shutil.rmtree(state, ignore_errors=True)
