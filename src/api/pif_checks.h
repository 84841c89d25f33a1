/* pif_checks.h: XAPI's refusals shared by PIF, VLAN, Bond and host
 * networking messages (xapi_pif.ml, xapi_pif_helpers.ml asserts). Each
 * sets the error on call and returns -1, else 0; lock held. */
#pragma once

#include <stdbool.h>

#include "call.h"
#include "db.h"

/* A row of class_name, else HANDLE_INVALID [class_name; ref]. */
DbRow *pif_checks_row(Call *call, const char *class_name, const char *ref);

bool pif_checks_is_bond_slave(const DbRow *pif);
bool pif_checks_is_bond_master(const DbRow *pif);

int pif_checks_managed(Call *call, const DbRow *pif);             /* PIF_UNMANAGED */
int pif_checks_network_managed(Call *call, const DbRow *network); /* NETWORK_UNMANAGED */
/* NETWORK_ALREADY_CONNECTED [host; pif] when network has a PIF on host. */
int pif_checks_no_local_pif(Call *call, const DbRow *network, const char *host);
/* VIF_IN_USE [network; vif] for a VIF attached to a running VM. */
int pif_checks_no_vif_in_use(Call *call, const DbRow *network);
/* PIF_IS_MANAGEMENT_INTERFACE [pif]. */
int pif_checks_not_management(Call *call, const DbRow *pif);
/* PIF_ALREADY_BONDED [pif] for a bond's slave or master. */
int pif_checks_not_in_bond(Call *call, const DbRow *pif);
