/* child_run.h: running a helper program (a host plugin, an extension)
 * without a shell, with its output captured, a time limit and an output
 * cap; the whole process group is killed when either is passed. */
#pragma once

#include <glib.h>
#include <stdbool.h>

typedef enum {
    CHILD_EXITED,        /* code: the exit status */
    CHILD_SIGNALED,      /* code: the signal */
    CHILD_TIMED_OUT,     /* killed at the time limit */
    CHILD_OUTPUT_CAPPED, /* killed: stdout passed the cap */
    CHILD_STOPPED,       /* killed: it was stopped (SIGSTOP, SIGTSTP...) */
    CHILD_CANCELLED,     /* killed: the caller's cancel() said so */
    CHILD_SPAWN_FAILED,  /* never ran; spawn_error says why */
} ChildEnd;

typedef struct {
    char *const *argv;     /* argv[0] is the program's path */
    char *const *envp;     /* the whole environment */
    const char *input;     /* written to stdin, then closed; NULL: /dev/null */
    unsigned time_limit_s; /* 0: none */
    size_t output_limit;   /* bytes of stdout (and of stderr kept); 0: none */
    bool (*cancel)(void *ctx); /* polled a few times a second; NULL: never */
    void *cancel_ctx;
} ChildSpec;

typedef struct {
    ChildEnd end;
    int code;
    GString *out;       /* stdout, up to the cap */
    GString *err;       /* stderr, up to the cap */
    char *spawn_error;  /* CHILD_SPAWN_FAILED */
} ChildResult;

/* Runs the program to its end. Always fills *r (child_result_clear frees). */
void child_run(const ChildSpec *spec, ChildResult *r);
void child_result_clear(ChildResult *r);
/* Kills every child running now, with its process group (before xapid
 * re-executes itself: nothing would read them afterwards). */
void child_run_kill_all(void);
