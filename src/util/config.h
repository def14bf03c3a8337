/* config.h: steward's configuration. One table (config.c) names every option
 * with its type, default and documentation; from it come the defaults, the
 * INI file reader (inih), STEWARD_<NAME> environment overrides, --set flags,
 * and the commented config file `steward init` writes. Read by app/. */
#ifndef STEWARD_CONFIG_H
#define STEWARD_CONFIG_H

#include <stddef.h>

#define CONFIG_STR 512

struct config {
    char data_dir[CONFIG_STR];
    char hostname[CONFIG_STR];
    char listen_https[CONFIG_STR];
    char listen_http[CONFIG_STR];
    char database[CONFIG_STR];
    char tls_cert[CONFIG_STR];
    char tls_key[CONFIG_STR];
    char ca_cert[CONFIG_STR];
    char ca_key[CONFIG_STR];
    char trusted_proxies[CONFIG_STR];
    char log_level[32];
    char scep_challenge[32];
    char scep_static_challenge[CONFIG_STR];
    long scep_challenge_ttl;
    long scep_cert_days;
    long scep_allow_ec;
    long scep_manual_approval;
    char ca_previous_cert[CONFIG_STR];
    char ca_previous_key[CONFIG_STR];
    char ca_root_cert[CONFIG_STR];
    char ca_root_key[CONFIG_STR];
    long ca_overlap_days;
    char device_ca_files[CONFIG_STR];
    char scep_external_url[CONFIG_STR];
    char scep_external_challenge[CONFIG_STR];
    char scep_ra_cert[CONFIG_STR];
    char scep_ra_key[CONFIG_STR];
    long cert_expiry_days;
    long cert_watch_interval;
    long io_threads;
    long workers;
    long malloc_arenas;
    long max_body_device;
    long max_body_api;
    long max_header;
    long read_timeout;
    long idle_timeout;
    long inventory_on_enroll;
    long inventory_refresh_interval;
    long inventory_history_days;
    /* enrollment (issue 4) */
    char enroll_topic[CONFIG_STR];
    char enroll_base_url[CONFIG_STR];
    char enroll_organization[CONFIG_STR];
    char enroll_device_ca_files[CONFIG_STR];
    long enroll_access_rights;
    long enroll_sign_message;
    long enroll_checkout_when_removed;
    long enroll_challenge_ttl;
    long enroll_pending_ttl;
    long enroll_session_ttl;
    long enroll_max_failures;
    long enroll_ip_max_failures;
    long enroll_failure_window;
    long enroll_lockout_seconds;
    long profiles_converge_interval; /* profiles and groups */
    /* operators (issue 9): console sessions and sign-in lockout, webhooks */
    long console_session_ttl;
    long signin_max_failures;
    long signin_lockout_seconds;
    long webhook_max_attempts;
    long webhook_timeout;
    long webhook_retry_base;
    long webhook_log_days;
    /* push (issue 5) */
    char apns_url[CONFIG_STR];
    char apns_ca[CONFIG_STR];
    long apns_expiration;
    long apns_priority;
    long apns_connections;
    long apns_streams;
    long apns_timeout;
    long apns_ping_interval;
    long apns_ping_timeout;
    long push_coalesce_ms;
    long push_retry_max;
    long push_repush_after;
    long push_repush_interval;
    long command_expiry_interval;
    char apps_base_url[CONFIG_STR];
    long compliance_interval;
    long compliance_max_age;
};

/* Defaults for a data dir ("" leaves paths relative). */
void config_defaults(struct config *c, const char *data_dir);
/* Reads an INI file over c. Returns 0, or -1 with *err (malloc'd) naming the line. */
int config_load_file(struct config *c, const char *path, char **err);
/* Applies STEWARD_<OPTION> environment variables. 0 or -1 with *err. */
int config_apply_env(struct config *c, char **err);
/* Sets one option by name from text ("workers", "8"). 0 or -1 with *err. */
int config_set(struct config *c, const char *name, const char *value, char **err);
/* Writes a commented config file documenting every option with c's values.
 * Fails if the file exists. 0 or -1. */
int config_write_file(const struct config *c, const char *path);
/* Resolves relative paths against data_dir (after loading). */
void config_resolve_paths(struct config *c);

#endif
