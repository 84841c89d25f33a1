/* compat.h: docs/compat.md, written from the message registry. */
#pragma once

/* Markdown listing, per class, which messages are implemented. */
char *compat_markdown(void);
