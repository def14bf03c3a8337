/* memtrim.h: hands the memory freed after a burst of new connections back to
 * the operating system. A TLS handshake allocates far more than the
 * connection keeps (key exchange, certificate parsing, tickets); after
 * thousands of devices connect at once (a push wave, a morning), glibc keeps
 * those freed pages in its arenas. The I/O loop counts connections and, once
 * a burst has been quiet for a moment, calls malloc_trim. Used by server.c. */
#ifndef STEWARD_HTTP_MEMTRIM_H
#define STEWARD_HTTP_MEMTRIM_H

#include <stdatomic.h>

#define MEMTRIM_MIN_CONNECTIONS 1000 /* smaller bursts free too little to matter */
#define MEMTRIM_QUIET_MS 1000        /* no new connection for this long: the burst is over */
#define MEMTRIM_TICK_MS 500          /* how often the loop asks */

struct memtrim {
    atomic_long fresh;       /* connections since the last trim */
    atomic_llong last_ms;    /* monotonic time of the newest one */
};

/* A new connection; any thread. */
void memtrim_connection(struct memtrim *m);
/* Trims when a large enough burst has gone quiet; returns 1 when it trimmed.
 * Called from one loop's timer. */
int memtrim_tick(struct memtrim *m);

#endif
