"""xapid's XenAPI client module, with the interface of XenServer's
XenAPI.py (written for xapid from its documented behaviour), so that host
plugins and scripts written for XenServer run unchanged:

    session = XenAPI.Session("https://host/")
    session.xenapi.login_with_password("root", password, "1.0", "my-script")
    vms = session.xenapi.VM.get_all()
    session.xenapi.session.logout()

    session = XenAPI.xapi_local()   # xapid's unix socket: any user name
    session.xenapi.login_with_password("root", "")

Calls go over XML-RPC (xmlrpc.client). A call answered with
SESSION_INVALID logs in again with the last credentials and is retried
(three times at most). Errors are raised as XenAPI.Failure, whose
`details` is the ErrorDescription list.
"""
import http.client
import os
import socket
import ssl
import xmlrpc.client

API_VERSION_1_1 = "1.1"
API_VERSION_1_2 = "1.2"

# Where xapid listens for local callers: the plugin's environment says
# (xapid sets XAPID_SOCKET), else XenServer's path.
LOCAL_SOCKET = "/var/lib/xcp/xapi"

_LOGIN_METHODS = ("login_with_password", "slave_login", "slave_local_login",
                  "slave_local_login_with_password", "login_with_thumbprint")
_RETRIES = 3


class Failure(Exception):
    """A XenAPI error: details = [code, param, ...]."""

    def __init__(self, details):
        super().__init__(details)
        self.details = list(details)

    def __str__(self):
        return "XenAPI failure: %s" % (self.details,)

    def _details_map(self):
        return {str(i): d for i, d in enumerate(self.details)}


class UDSHTTPConnection(http.client.HTTPConnection):
    """HTTP over a unix socket: the "host" given is the socket's path."""

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if self.timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:
            self.sock.settimeout(self.timeout)
        self.sock.connect(self._socket_path)


class UDSTransport(xmlrpc.client.Transport):
    """An xmlrpc.client transport to a unix socket."""

    def __init__(self, path, use_datetime=False):
        super().__init__(use_datetime=use_datetime)
        self._path = path
        self._extra_headers = []

    def add_extra_header(self, key, value):
        self._extra_headers.append((key, value))

    def make_connection(self, host):
        # One connection per call: xapid's unix clients are few and short.
        conn = UDSHTTPConnection("localhost")
        conn._socket_path = self._path
        return conn

    def send_headers(self, connection, headers):
        super().send_headers(connection, list(headers) + self._extra_headers)


def _unwrap(reply):
    """The Value of a XenAPI reply, or Failure."""
    if not isinstance(reply, dict) or "Status" not in reply:
        raise Failure(["INTERNAL_ERROR", "not a XenAPI reply: %r" % (reply,)])
    if reply["Status"] == "Success":
        return reply.get("Value", "")
    description = reply.get("ErrorDescription") or ["INTERNAL_ERROR", "no error description"]
    raise Failure(description)


class _Dispatcher:
    """session.xenapi.CLASS.message(...) -> session.xenapi_request("CLASS.message", args)."""

    def __init__(self, send, name):
        self._send = send
        self._name = name

    def __repr__(self):
        return "<XenAPI._Dispatcher for %s>" % (self._name or "xenapi")

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return _Dispatcher(self._send, attr if self._name is None else "%s.%s" % (self._name, attr))

    def __call__(self, *args):
        return self._send(self._name, args)


class Session(xmlrpc.client.ServerProxy):
    """A connection to a XenAPI server and the session held on it."""

    def __init__(self, uri, transport=None, encoding=None, verbose=False,
                 allow_none=True, ignore_ssl=False):
        context = None
        if ignore_ssl and uri.startswith("https"):
            context = ssl._create_unverified_context()
        kwargs = {"context": context} if context is not None else {}
        super().__init__(uri, transport, encoding, verbose, allow_none, **kwargs)
        self.transport = transport
        self._session = None
        self.last_login_method = None
        self.last_login_params = None
        self._API_version = API_VERSION_1_1

    def xenapi_request(self, methodname, params):
        """Calls methodname (e.g. "VM.get_all") with the session first."""
        if methodname.startswith("login") or methodname in _LOGIN_METHODS:
            return self._login(methodname, params)
        for attempt in range(_RETRIES):
            call = self._ServerProxy__request
            try:
                return _unwrap(call(methodname, (self._session,) + tuple(params)))
            except Failure as failure:
                if (failure.details[:1] != ["SESSION_INVALID"] or not self.last_login_method
                        or attempt == _RETRIES - 1):
                    raise
                self._login(self.last_login_method, self.last_login_params)
        raise Failure(["SESSION_INVALID", str(self._session)])

    def _login(self, method, params):
        call = self._ServerProxy__request
        result = _unwrap(call("session.%s" % method, tuple(params)))
        if result == "SESSION_INVALID":
            raise Failure(["SESSION_INVALID", "received SESSION_INVALID when logging in"])
        self._session = result
        self.last_login_method = method
        self.last_login_params = tuple(params)
        self._API_version = self._get_api_version()
        return result

    def _logout(self):
        try:
            if self.last_login_method and self.last_login_method.startswith("slave_local"):
                return self.xenapi_request("session.local_logout", ())
            return self.xenapi_request("session.logout", ())
        finally:
            self._session = None
            self.last_login_method = None
            self.last_login_params = None
            self._API_version = API_VERSION_1_1

    def _get_api_version(self):
        try:
            pool = self.xenapi_request("pool.get_all", ())[0]
            host = self.xenapi_request("pool.get_master", (pool,))
            major = self.xenapi_request("host.get_API_version_major", (host,))
            minor = self.xenapi_request("host.get_API_version_minor", (host,))
            return "%s.%s" % (major, minor)
        except (Failure, IndexError):
            return API_VERSION_1_1

    @property
    def API_version(self):
        return self._API_version

    def __getattr__(self, name):
        if name == "handle":
            return self._session
        if name == "xenapi":
            return _Dispatcher(self._xenapi_send, None)
        if name.startswith("login") or name.startswith("slave_local"):
            return lambda *params: self._login(name, params)
        if name == "logout":
            return self._logout
        return super().__getattr__(name)

    def _xenapi_send(self, name, args):
        if name in ("login_with_password", "slave_local_login_with_password",
                    "login_with_thumbprint"):
            return self._login(name, args)
        if name == "logout" or name == "session.logout":
            return self._logout()
        return self.xenapi_request(name, args)


def xapi_local():
    """A Session over the local xapid's unix socket, where any user name
    logs in with any password as the local superuser."""
    path = os.environ.get("XAPID_SOCKET", LOCAL_SOCKET)
    return Session("http://_var_lib_xcp_xapi/", transport=UDSTransport(path))
