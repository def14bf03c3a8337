/* enroll.h: enrollment (issue 4): the signed enrollment profile, the
 * sign-in portal at /enroll, Apple's three-phase over-the-air Profile
 * Service enrollment, enrollment users and records, and the hooks the MDM
 * check-in calls. Front end for app/router.c (routes under the
 * "enrollment" marker); profiles come from enroll/profile.h, sessions from
 * web/session.h, storage from store_enroll.h. */
#ifndef STEWARD_ENROLL_H
#define STEWARD_ENROLL_H

#include <stddef.h>
#include <stdint.h>

#include "core/service.h"
#include "enroll/profile.h"
#include "http/http.h"

struct store;
struct config;

/* ---- shared (service.c) ---- */

/* The APNs topic enrollment profiles carry. Until a push certificate exists
 * it is the configured enroll_topic (*configured = 1; logged once). The lead
 * wires this to the push area's store_pushcert_topic_default after merging.
 * 0, or -1 when there is none (no push certificate, enroll_topic empty). */
int enroll_topic(struct store *s, const struct config *cfg, char *out, size_t n,
                 int *configured);

/* Everything a profile needs for this request; buffers inside. */
struct enroll_ctx {
    struct enroll_settings st;
    char base_url[600];
    char scep_url[700];
    char topic[256];
};
/* Fills ctx for w and req (base URL from enroll_base_url or the Host
 * header). 0, or -1 with *why (static text) when a profile cannot be made. */
int enroll_ctx_init(struct worker *w, const struct request *req, struct enroll_ctx *ctx,
                    const char **why);

/* A one-time SCEP challenge for a profile (the configured mode decides:
 * dynamic makes one, static uses it, none gives NULL; scep_external_url
 * uses scep_external_challenge). out holds at least 600 bytes. 0 or -1. */
int enroll_scep_challenge(struct worker *w, const char *created_for, char *out, size_t n,
                          const char **challenge);

/* Signs profile with the server's certificate (tls_cert/tls_key) and
 * answers it as application/x-apple-aspen-config, attachment filename.
 * Takes profile. 0, or -1 after answering 500. */
int enroll_send_profile(struct worker *w, const struct request *req, struct response *resp,
                        plist_t profile, const char *filename);

/* Refusal: log line (rid, path, reason) + status with a text reason. */
void enroll_refuse(const struct request *req, struct response *resp, int status,
                   const char *reason);

/* ---- check-in hooks (service.c), called by mdm/checkin.c ---- */
/* Before Authenticate: when an over-the-air enrollment is pending for this
 * UDID, the device's serial number must be the one it reported and the
 * identity (cert_fp, when steward issued it) must name this UDID. 0, or -1
 * with *reason (the record is marked failed). */
int enroll_check_authenticate(struct store *s, const char *udid, const char *serial,
                              const char *cert_fp, const char **reason);
/* After Authenticate: the pending enrollment of udid is done as id. */
void enroll_note_authenticated(struct store *s, const char *id, const char *udid);
/* After CheckOut: enrolled records of id end. */
void enroll_note_checkout(struct store *s, const char *id);

/* A scheduler job (core/scheduler.h): pending enrollments past their
 * expiry become "expired"; expired web sessions and stale sign-in counters
 * are deleted. */
void enroll_housekeeping_job(struct store *s, void *arg, int64_t now);

/* ---- portal (portal.c) ---- */
void enroll_portal_page(struct worker *w, struct request *req, struct response *resp);
void enroll_portal_signin(struct worker *w, struct request *req, struct response *resp);
void enroll_portal_signout(struct worker *w, struct request *req, struct response *resp);
/* GET /enroll/profile: the phase-1 Profile Service profile for the
 * signed-in user. */
void enroll_portal_profile(struct worker *w, struct request *req, struct response *resp);
/* The portal's web realm (web/session.h) from configuration. */
struct web_realm;
void enroll_realm(const struct config *cfg, struct web_realm *r);

/* ---- over the air (ota.c): POST /enroll/ota, phases 2 and 3 ---- */
void enroll_ota(struct worker *w, struct request *req, struct response *resp);

/* ---- admin API (api.c) ---- */
/* GET /api/v1/enroll/profile[?user=NAME][&method=profile|configurator] */
void enroll_api_profile(struct worker *w, struct request *req, struct response *resp);
void enroll_api_users_list(struct worker *w, struct request *req, struct response *resp);
void enroll_api_users_create(struct worker *w, struct request *req, struct response *resp);
void enroll_api_user_patch(struct worker *w, struct request *req, struct response *resp,
                           const char *name);
/* POST /api/v1/devices/{id}/unenroll: queues RemoveProfile for the
 * enrollment profile and marks the enrollment record unenrolled (the
 * device's CheckOut follows when it removes the profile). */
void enroll_api_unenroll(struct worker *w, struct request *req, struct response *resp,
                         const char *id);
/* GET /api/v1/enrollments?user=&status=&limit=&offset= */
void enroll_api_records_list(struct worker *w, struct request *req, struct response *resp);

/* ---- users (users.c), shared by the API and `steward user` ---- */
/* 1 when name is acceptable (1-64 of [A-Za-z0-9._@-]). */
int enroll_user_name_ok(const char *name);

#endif
