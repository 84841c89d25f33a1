"""xapid's XenAPIPlugin module, with the interface of XenServer's (written
for xapid from its documented behaviour): a host plugin is an executable
script that calls dispatch() with a table of its functions.

    import XenAPIPlugin

    def main(session, args):
        return "args were: %r" % (args,)

    if __name__ == "__main__":
        XenAPIPlugin.dispatch({"main": main})

xapid runs the plugin with one argument, an XML-RPC methodCall of the
function with (session ref, args map); dispatch() calls table[name] with
a XenAPI session bound to that ref (over xapid's unix socket) and the
args, and prints a XenAPI reply on stdout: the string returned, or
Failure's error, or XENAPI_PLUGIN_FAILURE [name, exception class, message]
for any other exception, or UNKNOWN_XENAPI_PLUGIN_FUNCTION [name]. The
exit status is 0 in all these cases.
"""
import sys
import xmlrpc.client

import XenAPI


class Failure(Exception):
    """An error the plugin chooses: the caller gets code [params...]."""

    def __init__(self, code, params):
        super().__init__(code, params)
        self.params = [code] + list(params)

    def __str__(self):
        return "XenAPIPlugin.Failure(%s)" % (self.params,)


def _reply(envelope):
    return xmlrpc.client.dumps((envelope,), "", True)


def success_message(result):
    """The reply for a function that returned result (a string)."""
    return _reply({"Status": "Success", "Value": result})


def failure_message(description):
    """The reply for an error: description = [code, param, ...]."""
    return _reply({"Status": "Failure", "ErrorDescription": description})


def dispatch(fn_table):
    """Runs the function the call in sys.argv[1] names and prints its reply."""
    if len(sys.argv) != 2:
        raise RuntimeError("incorrect arguments: a plugin takes one, the XML-RPC call")
    params, name = xmlrpc.client.loads(sys.argv[1])
    session = XenAPI.xapi_local()
    session._session = params[0]
    args = params[1] if len(params) > 1 else {}
    try:
        if name not in fn_table:
            print(failure_message(["UNKNOWN_XENAPI_PLUGIN_FUNCTION", name]))
            return
        print(success_message(fn_table[name](session, args)))
    except Failure as failure:
        print(failure_message(failure.params))
    except Exception as error:  # every other error reaches the caller too
        print(failure_message(["XENAPI_PLUGIN_FAILURE", name, error.__class__.__name__,
                               str(error)]))
