"""The fixtures of the modules that test against one daemon of the sim
hypervisor: `daemon` (one for the module) and `api` (a fresh login on it,
as (proxy, session)). A module imports both by name."""
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
