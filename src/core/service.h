/* service.h: what a request handler works with. A struct service holds what
 * every thread shares, read-only after start (configuration, trust anchors);
 * a struct worker is one handler thread's own state (its store connection).
 * Built by app/serve.c, passed to the front ends (mdm/, api/). */
#ifndef STEWARD_SERVICE_H
#define STEWARD_SERVICE_H

#include <time.h>

struct config;
struct pki_ca;
struct pki_trust;
struct store;
struct push_service;
struct events;

struct service {
    const struct config *cfg;
    const struct pki_trust *trust; /* device identity trust anchors (steward's CA) */
    const struct pki_ca *ca;       /* steward's CA: issues device certificates, signs CertReps and CRLs */
    time_t started;
    struct push_service *push; /* APNs sender (core/push.c), NULL when apns_url is empty */
    struct events *events;     /* webhook/event fan-out (core/events.c), NULL when off */
};

struct worker {
    const struct service *svc;
    struct store *store; /* owned by this worker's thread */
    int index;
};

#endif
