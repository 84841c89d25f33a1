/* http_actions.h: XAPI's HTTP actions (datamodel.ml http_actions) as
 * pseudo-messages for the RBAC check: wire name "http/<action>", the
 * roles XAPI gives each. */
#pragma once

#include "datamodel.h"

/* The action by XAPI's name ("get_export"); NULL if XAPI has none. */
const DmMessage *http_action(const char *name);

/* The n-th action, for listing permissions; NULL past the end. */
const DmMessage *http_action_at(unsigned i);
