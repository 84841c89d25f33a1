"""The host certificate over the API and on the wire: host.get_server_certificate
is what the HTTPS port presents, host.install_server_certificate with XAPI's
checks and errors (nothing changes on a refused one), reset and refresh,
the Certificate record, TLS 1.2 and later only, and pool.set_https_only
turning plain HTTP off while HTTPS goes on. A sim daemon; certificates are
made with Debian's python3-cryptography."""
import datetime
import hashlib
import http.client
import os
import socket
import ssl
import subprocess
import xmlrpc.client

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from xapid_daemon import REPO, XAPID, Daemon, err, ok

XE = os.environ.get("XE_BIN", os.path.join(os.path.dirname(XAPID), "xe"))
if not os.path.exists(XE):
    XE = os.path.join(REPO, "build", "xe")

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def daemon():
    d = Daemon(extra_args=["--hypervisor", "sim", "--listen-tls", "127.0.0.1:0"])
    d.sock = os.path.join(d.state_dir, "xapi.sock")
    d.stop()  # again with the unix socket, where xe connects
    d.extra_args += ["--unix", d.sock]
    d.start()
    yield d
    d.stop()


def client_context(**versions):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    for k, v in versions.items():
        setattr(ctx, k, v)
    return ctx


def served_der(d, **versions):
    """The certificate the HTTPS port presents (DER), and the TLS version."""
    with socket.create_connection(("127.0.0.1", d.tls_port), timeout=10) as raw:
        with client_context(**versions).wrap_socket(raw) as tls:
            return tls.getpeercert(binary_form=True), tls.version()


def tls_api(d):
    proxy = xmlrpc.client.ServerProxy(f"https://127.0.0.1:{d.tls_port}/",
                                      context=client_context())
    return proxy, ok(proxy.session.login_with_password("root", "xapid-test-pw"))


def this_host(api):
    proxy, s = api
    return ok(proxy.host.get_all(s))[0]


def host_certificate_records(api):
    proxy, s = api
    records = ok(proxy.Certificate.get_all_records(s))
    return {ref: r for ref, r in records.items() if r["type"] == "host"}


def fingerprint(der):
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def pem_der(pem):
    return ssl.PEM_cert_to_DER_cert(pem)


def make_key(kind="rsa", bits=2048):
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def make_cert(key, issuer_key=None, issuer_name="xapid test CA", name="host.example",
              days=(-1, 30), digest=hashes.SHA256(), ca=False):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
               .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now + datetime.timedelta(days=days[0]))
               .not_valid_after(now + datetime.timedelta(days=days[1]))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    cert = builder.sign(issuer_key or key, digest)
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_served_certificate_is_the_one_reported(daemon):
    api = daemon.login()
    proxy, s = api
    host = this_host(api)
    pem = ok(proxy.host.get_server_certificate(s, host))
    assert pem.startswith("-----BEGIN CERTIFICATE-----") and pem.count("BEGIN") == 1
    der, version = served_der(daemon)
    assert der == pem_der(pem)
    assert version in ("TLSv1.2", "TLSv1.3")
    records = host_certificate_records(api)
    assert len(records) == 1
    (ref, record), = records.items()
    assert record["host"] == host and record["fingerprint"] == fingerprint(der)
    assert ok(proxy.host.get_record(s, host))["certificates"] == [ref]
    # The self-signed one is an RSA 2048 key, as XAPI makes its own.
    cert = x509.load_pem_x509_certificate(pem.encode())
    assert isinstance(cert.public_key(), rsa.RSAPublicKey)
    assert cert.public_key().key_size == 2048
    # The API answers over HTTPS as over HTTP.
    tproxy, ts = tls_api(daemon)
    assert ok(tproxy.host.get_server_certificate(ts, host)) == pem


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # TLS 1.0 and 1.1, asked for on purpose
def test_tls_versions(daemon):
    assert served_der(daemon, minimum_version=ssl.TLSVersion.TLSv1_2,
                      maximum_version=ssl.TLSVersion.TLSv1_2)[1] == "TLSv1.2"
    assert served_der(daemon, minimum_version=ssl.TLSVersion.TLSv1_3)[1] == "TLSv1.3"
    ctx = client_context(minimum_version=ssl.TLSVersion.TLSv1,
                         maximum_version=ssl.TLSVersion.TLSv1_1)
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    with socket.create_connection(("127.0.0.1", daemon.tls_port), timeout=10) as raw:
        with pytest.raises(ssl.SSLError):
            ctx.wrap_socket(raw)


def test_install_refusals_change_nothing(daemon):
    api = daemon.login()
    proxy, s = api
    host = this_host(api)
    before = ok(proxy.host.get_server_certificate(s, host))
    records = host_certificate_records(api)
    key = make_key()
    good = make_cert(key)
    other = make_key()
    ec_key = make_key("ec")
    small = make_key(bits=1024)

    def refused(cert, private_key, chain=""):
        return err(proxy.host.install_server_certificate(s, host, cert, private_key, chain))

    assert refused(good, "not a key") == ["SERVER_CERTIFICATE_KEY_INVALID"]
    assert refused(make_cert(ec_key), key_pem(ec_key))[0] == \
        "SERVER_CERTIFICATE_KEY_ALGORITHM_NOT_SUPPORTED"
    assert refused(make_cert(small), key_pem(small)) == \
        ["SERVER_CERTIFICATE_KEY_RSA_LENGTH_NOT_SUPPORTED", "1024"]
    assert refused("not a certificate", key_pem(key)) == ["SERVER_CERTIFICATE_INVALID"]
    expired = refused(make_cert(key, days=(-30, -1)), key_pem(key))
    assert expired[0] == "SERVER_CERTIFICATE_EXPIRED" and len(expired) == 3
    assert expired[1].endswith("Z") and expired[1] > expired[2]
    not_yet = refused(make_cert(key, days=(1, 30)), key_pem(key))
    assert not_yet[0] == "SERVER_CERTIFICATE_NOT_VALID_YET" and not_yet[1] < not_yet[2]
    assert refused(good, key_pem(other)) == ["SERVER_CERTIFICATE_KEY_MISMATCH"]
    assert refused(make_cert(key, digest=hashes.SHA384()), key_pem(key)) == \
        ["SERVER_CERTIFICATE_SIGNATURE_NOT_SUPPORTED"]
    assert refused(good, key_pem(key), "not a chain") == ["SERVER_CERTIFICATE_CHAIN_INVALID"]
    assert ok(proxy.host.get_server_certificate(s, host)) == before
    assert served_der(daemon)[0] == pem_der(before)
    assert host_certificate_records(api) == records


def test_install_then_refresh_and_reset(daemon):
    api = daemon.login()
    proxy, s = api
    host = this_host(api)
    ca_key = make_key()
    ca = make_cert(ca_key, name="xapid test CA", ca=True)
    key = make_key()
    leaf = make_cert(key, issuer_key=ca_key)
    # An open connection goes on with the old certificate; new ones get the new.
    tproxy, ts = tls_api(daemon)
    ok(proxy.host.install_server_certificate(s, host, leaf, key_pem(key), ca))
    assert ok(proxy.host.get_server_certificate(s, host)) == leaf
    der, _ = served_der(daemon)
    assert der == pem_der(leaf)
    assert ok(tproxy.host.get_server_certificate(ts, host)) == leaf
    (record,) = host_certificate_records(api).values()
    assert record["fingerprint"] == fingerprint(der)
    # refresh renews xapid's own self-signed certificate only.
    assert err(proxy.host.refresh_server_certificate(s, host))[0] == "OPERATION_NOT_ALLOWED"
    assert served_der(daemon)[0] == der
    # The installed one survives a restart of the daemon.
    daemon.stop()
    daemon.start()
    api = daemon.login()
    proxy, s = api
    assert served_der(daemon)[0] == der
    (record,) = host_certificate_records(api).values()
    assert record["fingerprint"] == fingerprint(der)
    # reset: a new self-signed one.
    ok(proxy.host.reset_server_certificate(s, host))
    reset = ok(proxy.host.get_server_certificate(s, host))
    assert reset != leaf and served_der(daemon)[0] == pem_der(reset)
    ok(proxy.host.refresh_server_certificate(s, host))
    refreshed = ok(proxy.host.get_server_certificate(s, host))
    assert refreshed != reset and served_der(daemon)[0] == pem_der(refreshed)
    (record,) = host_certificate_records(api).values()
    assert record["fingerprint"] == fingerprint(pem_der(refreshed))


def plain_http_answers(d):
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=5)
    try:
        conn.request("POST", "/", body=xmlrpc.client.dumps((), "system.listMethods"),
                     headers={"Content-Type": "text/xml"})
        return conn.getresponse().status == 200
    except (ConnectionError, http.client.HTTPException, socket.timeout):
        return False
    finally:
        conn.close()


def test_https_only(daemon):
    api = daemon.login()
    proxy, s = api
    pool = ok(proxy.pool.get_all(s))[0]
    host = this_host(api)
    assert err(proxy.pool.set_https_only(s, "OpaqueRef:nope", True))[:2] == \
        ["HANDLE_INVALID", "pool"]
    assert plain_http_answers(daemon)
    ok(proxy.pool.set_https_only(s, pool, True))
    assert not plain_http_answers(daemon)
    tproxy, ts = tls_api(daemon)
    assert ok(tproxy.host.get_https_only(ts, host)) is True
    # Kept across a restart.
    daemon.stop()
    daemon.start()
    assert not plain_http_answers(daemon)
    tproxy, ts = tls_api(daemon)
    ok(tproxy.pool.set_https_only(ts, pool, False))
    assert plain_http_answers(daemon)
    assert ok(daemon.login()[0].host.get_https_only(daemon.login()[1], host)) is False


def test_xe_certificate_commands(daemon):
    def xe(*args):
        p = subprocess.run([XE, *args], capture_output=True, text=True, timeout=60,
                           env={"PATH": "/usr/bin:/bin", "XAPID_SOCKET": daemon.sock})
        assert p.returncode == 0, p.stderr
        return p.stdout
    before = xe("host-get-server-certificate")
    assert before.startswith("-----BEGIN CERTIFICATE-----")
    xe("host-reset-server-certificate")
    after = xe("host-get-server-certificate")
    assert after != before and served_der(daemon)[0] == pem_der(after)
    xe("host-refresh-server-certificate")
    assert served_der(daemon)[0] != pem_der(after)
