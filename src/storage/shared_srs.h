/* shared_srs.h: a host's PBDs for the pool's shared SRs (XAPI's
 * Create_storage.initialise_storage and SR.create with shared=true). */
#pragma once

#include <glib.h>

#include "db.h"
#include "xapi_error.h"

/* At start, write lock held: a PBD of this host for every shared SR that
 * has none here, with the device_config of the master's PBD (of any, if
 * the master has none), marked attached so that the replug attaches it
 * (or marks it not attached when the directory is not there). */
int shared_srs_join(XapiError **err);

/* SR.create of a shared SR, write lock held: an unattached PBD for every
 * host but host, with device_config; their refs and hosts appended to
 * pbds and hosts (to plug once committed). */
int shared_srs_add_pbds(const char *sr_ref, const char *host, const Xv *device_config,
                        GPtrArray *pbds, GPtrArray *hosts, XapiError **err);

/* The plugs of those PBDs, each on its host (a failure is logged and
 * leaves that PBD unattached, as XAPI's create leaves it). */
void shared_srs_plug(GPtrArray *pbds, GPtrArray *hosts);

/* Whether this host leaves the scans of sr to the master (a shared SR on
 * a pool member: two hosts scanning one directory would each add its new
 * files). Lock held. */
bool shared_srs_scanned_elsewhere(const DbRow *sr);
