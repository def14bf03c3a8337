/* metrics.h: process-wide counters and histograms for /metrics (Prometheus
 * text format). Lock-free atomics: any thread records, /metrics reads.
 * This is the one clearly marked global in the library: counters only. */
#ifndef STEWARD_METRICS_H
#define STEWARD_METRICS_H

#include "util/buf.h"

/* Route labels are the router's route names ("/mdm/checkin", "/api/v1/devices", …);
 * at most METRICS_MAX_ROUTES distinct names, later ones count as "other". */
#define METRICS_MAX_ROUTES 160

void metrics_request(const char *route, int status, double seconds);
void metrics_checkin(double seconds);  /* one device round trip (check-in or connect) */
void metrics_db(double seconds);       /* one storage call or transaction */

/* The certificate-expiry watcher's latest findings (gauges): how many issued
 * certificates expire within within_days, and the seconds until the soonest
 * issued certificate expires (negative: none). Rendered once set. */
void metrics_cert_expiry(long long expiring, int within_days, long long soonest_seconds);

/* APNs (core/push.c): one push outcome (apns.h's outcome names, plus
 * "skipped_*" for pushes not sent), and the push certificates' expiry:
 * how many expire within 30 days and days until the soonest (gauges). */
void metrics_push(const char *outcome);
void metrics_push_cert_expiry(long long expiring_30d, double soonest_days);

/* Appends the Prometheus exposition of everything recorded, plus
 * steward_queue_depth = queue_depth (a gauge read from the store by the caller;
 * negative omits it). Returns 0 or -1. */
int metrics_render(struct buf *out, long long queue_depth);

#endif
