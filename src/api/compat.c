/* compat.c: the compatibility table, from the registry (never by hand). */
#include "compat.h"
#include "network.h"

#include "datamodel.h"
#include "ha.h"
#include "vm_fields.h"
#include "vm_vtpm.h"

static bool handled_by_hand(const DmMessage *m) { return m->impl != NULL; }

/* Users other than root (docs/rbac.md has the long form). */
static void rbac_markdown(GString *out)
{
    g_string_append(
        out,
        "## Users, roles, RBAC\n\n"
        "| Call | Status |\n|---|---|\n"
        "| `pool.enable_external_auth` (`host.enable_external_auth`: one host) | type `PAM` "
        "only (else `AUTH_UNKNOWN_TYPE`): Linux users and groups (NSS) are subjects "
        "`u<uid>`/`g<gid>`, passwords checked by PAM (service `--pam-service`, default "
        "`xapid`) |\n"
        "| `session.login_with_password` | root by its own password always; others through PAM "
        "when on, with the roles of their subject and their groups' subjects, fixed at login "
        "in `rbac_permissions` |\n"
        "| every message and HTTP handler | `RBAC_PERMISSION_DENIED [permission, message]` "
        "for a session without the permission (XAPI's names, protected map keys included: "
        "`vm.add_to_other_config/key:folder`; `set_` of such a map checks each changed key) |\n"
        "| audit log | `STATE_DIR/audit.log`, one line per side-effecting call or HTTP action, "
        "allowed or denied; an Async call's when its task is made |\n"
        "| roles | XAPI's: the seven roles and a record per permission (no subroles), a role's "
        "permissions its subroles; subjects get one of the seven (`ROLE_NOT_FOUND` for a "
        "single permission) |\n\n");
}

/* What pools do and do not do yet (docs/pool.md has the long form). */
static void pool_markdown(GString *out)
{
    g_string_append(
        out,
        "## Pools\n\n"
        "| Call | Status |\n|---|---|\n"
        "| `pool.join`, `pool.join_force` | on the joining host: XAPI's pre-join checks and "
        "errors; the host, its CPUs, PIFs, PBDs, SRs, VDIs, control domain and halted VMs go to "
        "the master (networks merged by bridge); it restarts as a member with a replica of the "
        "master's database. `join_force` skips the CPU check only |\n"
        "| `pool.eject` | on the master: refused for the master (`INTERNAL_ERROR "
        "[Xapi_pool.Cannot_eject_master]`) and while VMs run on the host (`OPERATION_NOT_ALLOWED`); "
        "the host restarts standalone with a fresh database, its SR files kept |\n"
        "| `pool.initial_auth`, `session.slave_login` (hidden, host to host) | the pool secret "
        "(`STATE_DIR/pool-secret`, 0600) |\n"
        "| `session.login_with_password` on a member | `HOST_IS_SLAVE [master address]` over TCP; "
        "on its unix socket a session as on any host |\n"
        "| `session.slave_local_login_with_password` | the host's own root password; on a member "
        "the session is written at the master, or, when it cannot be reached, is a local "
        "session of the member (XAPI's emergency mode) until its next resync |\n"
        "| a member's unix socket | every other call relayed to the master as it came |\n"
        "| host-bound calls on the master | sent to the VM's resident host, the named host "
        "(`VM.start_on`, `resume_on`, `host.*`), a host with the SR plugged, with the caller's "
        "task; `HOST_OFFLINE`, `CANNOT_CONTACT_HOST` |\n"
        "| `host_metrics.live` | false after `--member-timeout` s (default 30) of a member's "
        "silence |\n"
        "| HTTP handlers in a pool | `302` to the host that holds the work, as XAPI's: "
        "`/import_raw_vdi`, `/export_raw_vdi` and `/import` to a host with the SR plugged, "
        "`/export` of a VM to its resident host or one that sees its disks, `/console` and "
        "`/vm_rrd` to the VM's resident host (XAPI answers 500 for a console elsewhere) |\n"
        "| `pool.designate_new_master`, `emergency_transition_to_master`, "
        "`emergency_reset_master`, `recover_slaves` | with `--pool-dqlite` (docs/pool.md, "
        "\"Change of master\"); refused without it |\n"
        "| placement by memory, `VM.pool_migrate`, `host.evacuate`, shared `file` SRs | "
        "docs/pool.md, docs/migration.md |\n"
        "| HA | with `--pool-dqlite`, no statefile: the \"High availability\" section below, "
        "docs/ha.md |\n\n");
}

/* Bonds on either kind of kernel (src/network/vlan_bond.c, bond_bpf.c). */
static void bonds_markdown(GString *out)
{
    g_string_append(
        out,
        "## Bonds (`Bond.create`, `Bond.set_mode`)\n\n"
        "| Mode | Kernel with bonding (`CONFIG_BONDING`) | Kernel without: xapid's own "
        "(`src/network/bond_bpf.c`) |\n|---|---|---|\n"
        "| `active-backup` | Linux bonding's `active-backup`, miimon 100 | one member sends and "
        "receives: the primary slave while it has carrier, else the active member while it "
        "keeps it, else the first with carrier; what arrives on the others is dropped; carrier "
        "from rtnetlink and a look every 100 ms; on a failover one RARP frame from each MAC "
        "the bond's bridge knows (but not behind the bond) leaves through the new member, so "
        "the switch learns it (Linux bonding's gratuitous ARPs cover only its own addresses) "
        "|\n"
        "| `balance-slb` | Linux bonding's `balance-alb` | each source MAC leaves through the "
        "member with carrier its hash picks (no rebalancing by load, unlike Open vSwitch); "
        "broadcasts and multicasts leave through, and are taken only from, the active member; "
        "unicast is taken from every member, but nothing from a MAC the bond sent from in "
        "the last second (a switch floods unknown unicast back: Open vSwitch's rule) |\n"
        "| `lacp` | Linux bonding's `802.3ad` (properties: README) | refused, "
        "`OPERATION_NOT_ALLOWED`, nothing recorded: xapid does not speak LACP |\n"
        "| `Bond.links_up` | the members with carrier, at each 5 s metrics round | the same "
        "|\n\n");
}

/* Management interface, guest IP settings and console limits: what is
 * done and what is refused (src/api/host_network.c, vif.c). */
static void management_markdown(GString *out)
{
    g_string_append(
        out,
        "## Management interface, guest IP settings, console sessions\n\n"
        "| Call | Status |\n|---|---|\n"
        "| `host.management_disable` | as XAPI's: `HA_IS_ENABLED` under HA, "
        "`SLAVE_REQUIRES_MANAGEMENT_INTERFACE` on a member; else every TCP and TLS listener on "
        "an address other than loopback stops listening (clients there are refused), one on all "
        "addresses (`:PORT`) listens on loopback only (XAPI's `Local [127.0.0.1]`), loopback "
        "listeners and the unix socket go on, as do connections already open; no PIF is "
        "`management`; `host.address` stays. `STATE_DIR/management-disabled` keeps it so across "
        "restarts (XAPI's inventory) |\n"
        "| `host.management_reconfigure` after it | listening again on each address, on the "
        "port it had (a `:0` listener disabled across a restart gets a new free port); "
        "`PIF.reconfigure_ip` alone does not turn the listeners on |\n"
        "| `VIF.configure_ipv4`, `VIF.configure_ipv6` | XAPI's checks (`Static`: the address a "
        "CIDR of the family, else `INVALID_CIDR_ADDRESS_SPECIFIED [address]`; on a locked VIF "
        "one of its allowed addresses, else `ADDRESS_VIOLATES_LOCKING_CONSTRAINT`; the gateway "
        "an address, else `INVALID_IP_ADDRESS_SPECIFIED [gateway]`), then refused with "
        "`VM_LACKS_FEATURE [vm]`, nothing stored: XAPI hands the settings to XenServer's guest "
        "tools through xenstore and answers that for a guest whose tools lack "
        "`feature-static-ip-setting`; xapid has no xenstore, and qemu-ga, the agent it speaks, "
        "has no command that sets a guest's addresses |\n"
        "| `pool.limit_console_sessions` | absent: the field came with XAPI 26.1, after the "
        "datamodel xapid is built from; every console takes any number of clients |\n\n");
}

char *compat_markdown(void)
{
    GString *out = g_string_new(NULL);
    unsigned total = 0, implemented = 0, by_hand = 0;
    DM_FOREACH_MESSAGE(cls, msg)
    {
        if (msg->state == DM_REMOVED || msg->hidden)
            continue;
        total++;
        implemented += dm_message_implemented(msg);
        by_hand += handled_by_hand(msg);
    }
    g_string_append(out, "# XenAPI compatibility\n\n"
                         "Generated by `build/xapid --print-compat` from the message registry; "
                         "`tests/check_compat.sh` fails when this file is stale.\n\n"
                         "A message is implemented when the generic engine serves it (implicit "
                         "messages: field accessors, records, lookups, create/destroy) or a "
                         "hand-written handler exists. Every other message answers "
                         "`MESSAGE_METHOD_UNKNOWN` and is absent from `system.listMethods`.\n\n");
    g_string_append_printf(out, "Implemented: %u of %u messages (%u by hand-written handlers).\n\n",
                           implemented, total, by_hand);
    g_string_append(out, "## HTTP handlers\n\n"
                         "| Method, path | Status |\n|---|---|\n"
                         "| POST `/`, `/RPC2`, `/xmlrpc` (XML-RPC) | implemented |\n"
                         "| POST `/jsonrpc` (JSON-RPC 1.0 and 2.0) | implemented |\n"
                         "| POST `/json` (either, by body) | implemented |\n"
                         "| OPTIONS (CORS preflight) | implemented |\n"
                         "| CONNECT `/console` (`ref=` or `uuid=`; session by query, cookie or "
                         "basic auth): `200 OK`, then RFB from the VM's VNC display (`rfb` "
                         "console) or the bytes of its serial port (`vt100`), until the VM "
                         "stops | implemented (several clients at once: a `vt100` console is "
                         "shared through one connection to QEMU's serial port; what any of "
                         "them types goes to the guest) |\n"
                         "| GET `/console` with `Upgrade: websocket`: the same in RFC 6455 binary "
                         "frames (subprotocol `binary` or none; over HTTPS too) | implemented "
                         "(not Hixie-76: 501) |\n"
                         "| GET `/audit_log` (`since=`; session by query, cookie or basic "
                         "auth): the RBAC audit log, text | implemented (XAPI's line form) "
                         "|\n\n");
    for (unsigned c = 0; c < dm_n_classes; c++) {
        const DmClass *cls = &dm_classes[c];
        GString *yes = g_string_new(NULL), *no = g_string_new(NULL);
        for (unsigned m = 0; m < cls->n_messages; m++) {
            const DmMessage *msg = &cls->messages[m];
            if (msg->state == DM_REMOVED || msg->hidden)
                continue;
            GString *into = dm_message_implemented(msg) ? yes : no;
            g_string_append_printf(into, "%s`%s`%s", into->len ? ", " : "", msg->name,
                                   handled_by_hand(msg) ? "*" : "");
        }
        g_string_append_printf(out, "## %s\n\n- implemented: %s\n- not implemented: %s\n\n",
                               cls->name, yes->len ? yes->str : "none",
                               no->len ? no->str : "none");
        g_string_free(yes, TRUE);
        g_string_free(no, TRUE);
    }
    g_string_append(out, "`*` marks messages served by a hand-written handler.\n\n");
    rbac_markdown(out);
    pool_markdown(out);
    ha_markdown(out);
    vm_fields_markdown(out);
    vm_vtpm_markdown(out);
    network_markdown(out);
    bonds_markdown(out);
    management_markdown(out);
    return g_string_free(out, FALSE);
}
