/* event.h: what other parts tell the event module. */
#pragma once

/* Drops the legacy event.register state of a session that is going away. */
void event_forget_session(const char *session_ref);
