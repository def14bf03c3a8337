/* app.h: the steward program's subcommands (init, serve, ca, apikey) and the
 * pieces they share: loading configuration for a data dir and the route
 * table that composes the front ends. Only app/ has main(). */
#ifndef STEWARD_APP_H
#define STEWARD_APP_H

#include "core/service.h"
#include "http/http.h"
#include "util/config.h"

int app_init(int argc, char **argv);
int app_serve(int argc, char **argv);
int app_ca(int argc, char **argv);
/* `steward ca init|show|rotate|ra` (ca_admin.c); argv[1] is sub. */
int app_ca_admin(const char *sub, int argc, char **argv);
int app_apikey(int argc, char **argv);
/* `steward user add|passwd|disable|enable|list` (user.c): enrollment users. */
int app_user(int argc, char **argv);
/* `steward admin create|password` (admin.c): console accounts. */
int app_admin(int argc, char **argv);
/* `steward migrate` and `steward migrate-store` (migrate.c). */
int app_migrate(int argc, char **argv);
int app_migrate_store(int argc, char **argv);
/* `steward push-cert csr|sign-request` (push_cert.c, issue 5). */
int app_push_cert(int argc, char **argv);

/* Fills cfg for data_dir: defaults, DATA/steward.conf, STEWARD_* env,
 * then the --set overrides (name=value strings). 0 or -1 (message printed). */
int app_load_config(struct config *cfg, const char *data_dir, char **sets, int nsets);
/* The command-line tools' way in: the data dir's configuration (no --set)
 * and its database opened. 0 with *s to store_close, or -1 (message printed). */
struct store;
int app_open_store(const char *data_dir, struct store **s);

/* Makes an API key: prints nothing, returns the secret in key (at least 72
 * bytes) after storing its hash under name/role. 0 or -1. */
int app_apikey_new(struct store *s, const char *name, const char *role, char *key, size_t keylen);

/* The PKI of a configuration (pki_load.c): the CA with its chain, the
 * previous CA while its overlap window lasts and the SCEP RA when its file
 * exists; and the device identity trust store (CA, previous CA, then
 * device_ca_files). 0 / pointer, or -1 / NULL with *err malloc'd. */
struct pki_ca;
struct pki_trust;
int app_load_ca(const struct config *cfg, struct pki_ca **out, char **err);
struct pki_trust *app_device_trust(const struct config *cfg, const struct pki_ca *ca, char **err);
/* When the previous CA stops being trusted: the active CA's notBefore plus
 * ca_overlap_days. */
#include <stdint.h>
int64_t app_previous_ca_until(const struct config *cfg, const struct pki_ca *ca);
/* Issues tls_cert/tls_key for cfg->hostname from the CA (init.c). 0 or -1. */
int app_issue_server_cert(const struct config *cfg);

/* The router: the http_handler_fn the server calls for every request. */
void app_route(void *worker_ctx, struct request *req, struct response *resp);
/* http.h's fast path: 1 when answered on the I/O thread, 0 to use the pool. */
int app_route_fast(void *io_ctx, struct request *req, struct response *resp);

#endif
