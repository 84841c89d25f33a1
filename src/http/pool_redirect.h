/* pool_redirect.h: HTTP handlers serve only where the work is, as XAPI's
 * (Importexport.return_302_redirect, export.ml, import.ml): a request this
 * host cannot serve in a pool answers 302 with Location: the same path and
 * query at the host that can (http://ADDRESS:PORT, a host record's address
 * and this host's port). Each function answers NULL when this host serves
 * it (alone, or it has what is needed), else the Location (caller frees). */
#pragma once

#include <microhttpd.h>

/* The same request (path url, the query's arguments) at the host reached
 * at address (a host record's). */
char *pool_redirect_request_to(struct MHD_Connection *conn, const char *address,
                               const char *url);

/* The same at host_ref's address (read lock held); NULL without one. */
char *pool_redirect_request_at(struct MHD_Connection *conn, const char *host_ref,
                               const char *url);

/* An SR's data (/import, /import_raw_vdi, /export_raw_vdi): a host with
 * the SR plugged, a live one first, when this one has not. */
char *pool_redirect_for_sr(struct MHD_Connection *conn, const char *url, const char *sr_ref);

/* A VDI's data: its SR's (as pool_redirect_for_sr). */
char *pool_redirect_for_vdi(struct MHD_Connection *conn, const char *url, const char *vdi_ref);

/* A VM's (/export, /console): its resident host while it is not halted;
 * a halted VM's where its disks' SRs are all plugged. */
char *pool_redirect_for_vm(struct MHD_Connection *conn, const char *url, const char *vm_ref);

/* Queues the 302. */
enum MHD_Result pool_redirect_reply(struct MHD_Connection *conn, const char *location);
