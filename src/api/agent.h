/* agent.h: the agent's own life: host.restart_agent (xapid re-executes
 * itself; VMs keep running) and host.shutdown_agent, and the machine's
 * power command. */
#pragma once

#include <glib.h>

#include "http_server.h"
#include "xapi_error.h"

typedef enum { AGENT_RUN, AGENT_RESTART, AGENT_SHUTDOWN } AgentEnd;

/* argv: the command line xapid was started with (kept for the restart). */
void agent_init(GMainLoop *loop, char **argv);
/* One second from now (as XAPI, so the reply goes out first) the main
 * loop ends, to restart or to stop. */
void agent_schedule_end(AgentEnd end);
AgentEnd agent_end(void);
/* Re-executes xapid with its command line: the HTTP listeners stay open
 * across exec, the hypervisor driver hands its domains over, no write is
 * in flight. Returns only if exec failed. */
void agent_reexec(HttpServer *server);
/* Runs "command action" (reboot, poweroff) detached; error if it cannot
 * be started. */
int agent_power_command(const char *command, const char *action, XapiError **err);
