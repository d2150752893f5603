/* tally - turn: one counter statement at a time among the worker
 * processes of a responder.
 *
 * Every increment locks the counter's one row until it commits. When two
 * processes each send their batch as soon as they have one, the second
 * UPDATE waits in the database for the first one's commit, and the
 * requests that arrive meanwhile cannot join it: its batch was fixed when
 * it was sent. Taking turns instead, a process that finds the turn taken
 * waits for it here, and only then takes its queue, so its statement
 * carries every request that arrived until the moment it can run.
 *
 * The turn is a robust mutex in memory the responder's parent maps before
 * it starts its workers, so every worker shares it and nothing of it is
 * in the file system. A worker that dies holding it (a crash, SIGKILL)
 * hands it on: the next one to ask takes it. A wait is bounded; after it
 * the caller goes on without the turn (the database's row lock still
 * orders the statements). */
#ifndef TALLY_TURN_H
#define TALLY_TURN_H

/* Makes the process's turn in shared anonymous memory. Call it before
 * fork(), so that the children share it. Returns 0, or -1 after logging
 * why (then every turn_take returns -1 at once). */
int	turn_init(void);

/* 1 once turn_init made the turn (several workers), else 0. */
int	turn_active(void);

/* Takes the turn, waiting at most timeout_ms; when it has to wait, it
 * first calls waiting(arg) (if not NULL). Returns 0 when taken (also from
 * a holder that died), or -1 when there is none (no turn_init) or the
 * wait ran out: the caller then goes on without it and must not give it
 * back. */
int	turn_take(unsigned int timeout_ms, void (*waiting)(void *), void *arg);
/* Gives back a turn turn_take returned 0 for. */
void	turn_give(void);

#endif
