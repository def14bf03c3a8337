/* config.c: the option table behind config.h and everything derived from it
 * (defaults, INI parsing with inih, environment overrides, the documented
 * file). Adding an option means adding a field and one table row. */
#include "util/config.h"

#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

enum opt_type { OPT_STR, OPT_LONG };

struct opt {
    const char *name;
    enum opt_type type;
    size_t offset;
    size_t size; /* for strings */
    const char *def;
    long min, max;
    const char *doc;
    int is_path; /* resolved against data_dir when relative */
};

#define S(field, def, path, doc) \
    {#field, OPT_STR, offsetof(struct config, field), sizeof(((struct config *)0)->field), def, 0, 0, doc, path}
#define L(field, def, lo, hi, doc) \
    {#field, OPT_LONG, offsetof(struct config, field), 0, def, lo, hi, doc, 0}

static const struct opt options[] = {
    S(hostname, "localhost", 0,
      "Host name devices use to reach steward; the server certificate is issued for it."),
    S(listen_https, "127.0.0.1:8443", 0,
      "HTTPS listener, address:port (port 0 picks a free port). Empty disables it."),
    S(listen_http, "", 0,
      "Plain-HTTP listener for deployments behind a TLS-terminating proxy. Empty disables it.\n"
      "Device identity then comes from Mdm-Signature or, from trusted_proxies only, a Client-Cert header."),
    S(database, "sqlite:steward.db", 0,
      "Storage: sqlite:PATH (relative to the data dir). PostgreSQL comes in a later release."),
    S(tls_cert, "tls/server.pem", 1, "Server certificate chain (PEM)."),
    S(tls_key, "tls/server.key", 1, "Server private key (PEM, mode 0600)."),
    S(ca_cert, "ca/ca.pem", 1, "CA certificate that device identity certificates chain to."),
    S(ca_key, "ca/ca.key", 1, "CA private key (PEM, mode 0600)."),
    S(trusted_proxies, "", 0,
      "Comma-separated IP addresses of proxies allowed to send the RFC 9440 Client-Cert header.\n"
      "The header is ignored from anyone else."),
    S(log_level, "info", 0, "Log level: debug, info, warn or error."),
    S(scep_challenge, "dynamic", 0,
      "SCEP challenge mode: dynamic (one-time challenges from the API and the enrollment flow),\n"
      "static (scep_static_challenge for every device) or none (no challenge: a lab only)."),
    S(scep_static_challenge, "", 0, "The shared challenge when scep_challenge = static."),
    L(scep_challenge_ttl, "3600", 60, 2592000, "Seconds a dynamic SCEP challenge stays valid."),
    L(scep_cert_days, "365", 1, 3650, "Validity of device identity certificates, days."),
    L(scep_allow_ec, "1", 0, 1, "1 lets CSRs carry ECDSA P-256/P-384 keys besides RSA 2048-4096."),
    L(scep_manual_approval, "0", 0, 1,
      "1 holds every SCEP request as pending until an operator approves it (stewardctl certs approve)."),
    S(ca_previous_cert, "ca/previous.pem", 1,
      "The CA before the last `steward ca rotate`: still trusted, and served in GetCACert,\n"
      "for ca_overlap_days after the current CA was made. Ignored when the file does not exist."),
    S(ca_previous_key, "ca/previous.key", 1, "The previous CA's private key (PEM, mode 0600)."),
    S(ca_root_cert, "ca/root.pem", 1,
      "Root CA of `steward ca init --intermediate` (it signs the issuing intermediate in ca_cert)."),
    S(ca_root_key, "ca/root.key", 1, "The root CA's private key (PEM, mode 0600)."),
    L(ca_overlap_days, "30", 0, 3650,
      "Days after a rotation during which certificates of the previous CA stay valid."),
    S(device_ca_files, "", 0,
      "Comma-separated PEM files of other CAs (and intermediates) whose device certificates are\n"
      "accepted as identities, e.g. an enterprise CA behind Microsoft NDES. Relative to the data dir."),
    S(scep_external_url, "", 0,
      "SCEP URL of an external CA (e.g. Microsoft NDES) enrollment profiles point devices at\n"
      "instead of steward's /scep. Add its CA chain to device_ca_files."),
    S(scep_external_challenge, "", 0,
      "Challenge put in enrollment profiles that use scep_external_url (empty: none)."),
    S(scep_ra_cert, "ca/ra.pem", 1,
      "SCEP RA certificate (made by `steward ca init --ra` or `steward ca ra`). When the file\n"
      "exists, GetCACert returns CA + RA and CertReps are signed by the RA."),
    S(scep_ra_key, "ca/ra.key", 1, "The RA's private key (PEM, mode 0600)."),
    L(cert_expiry_days, "30", 1, 365,
      "Device certificates expiring within this many days are reported (metric, log) and their\n"
      "enrollments marked due for re-enrollment."),
    L(cert_watch_interval, "3600", 10, 86400,
      "Seconds between runs of the certificate-expiry watcher (also purges spent SCEP challenges)."),
    L(io_threads, "0", 0, 64, "Event-loop threads accepting connections; 0 = one per core."),
    L(workers, "0", 0, 256, "Request handler threads (each owns a database connection); 0 = 4 per core."),
    L(malloc_arenas, "0", 0, 64,
      "glibc malloc arenas; 0 = glibc's default (8 per core). A small number trades CPU for memory:\n"
      "with 2, 10,000 idle TLS connections take ~6% less RSS but each TLS handshake costs ~20%\n"
      "more CPU (threads wait on shared arenas; bench/checkin). MALLOC_ARENA_MAX in the environment wins."),
    L(max_body_device, "4194304", 1024, 1073741824, "Largest request body on device routes, bytes."),
    L(max_body_api, "16777216", 1024, 1073741824, "Largest request body on API routes, bytes."),
    L(max_header, "16384", 1024, 1048576, "Largest request line plus headers, bytes."),
    L(read_timeout, "30", 1, 3600, "Seconds a client may take to send a request."),
    L(idle_timeout, "120", 1, 86400, "Seconds an idle keep-alive connection is kept."),
    L(inventory_on_enroll, "1", 0, 1,
      "1 queues the full inventory set (DeviceInformation, SecurityInfo, the lists) when a device\n"
      "completes enrollment (its first TokenUpdate)."),
    L(inventory_refresh_interval, "86400", 0, 31536000,
      "Seconds between inventory refreshes of each enrolled device; 0 turns the scheduled refresh off.\n"
      "A query still waiting for a device is never queued twice."),
    L(inventory_history_days, "90", 0, 36500,
      "Days of inventory history (what changed when) kept; 0 keeps it forever."),
    /* enrollment (issue 4) */
    S(enroll_topic, "", 0,
      "APNs topic (com.apple.mgmt.External.<uuid>) enrollment profiles carry until a push\n"
      "certificate is installed. Empty: no enrollment profile can be made without one."),
    S(enroll_base_url, "", 0,
      "Public https:// base URL devices use (ServerURL, CheckInURL, SCEP and the portal).\n"
      "Empty: https:// and the Host header of the request."),
    S(enroll_organization, "Steward", 0, "PayloadOrganization and the SCEP subject's O."),
    S(enroll_device_ca_files, "", 0,
      "Comma-separated PEM files of the CAs that issue Apple devices' certificates (Apple's\n"
      "iPhone Device CA), which must sign the device attributes of an over-the-air enrollment.\n"
      "Empty: the signature is checked but any signer is accepted. Relative to the data dir."),
    L(enroll_access_rights, "8191", 1, 8191,
      "AccessRights of the MDM payload (8191 = all), recorded per enrollment at Authenticate;\n"
      "commands needing a right it lacks are refused at enqueue time."),
    L(enroll_sign_message, "1", 0, 1, "SignMessage of the MDM payload (Mdm-Signature header)."),
    L(enroll_checkout_when_removed, "1", 0, 1, "CheckOutWhenRemoved of the MDM payload."),
    L(enroll_challenge_ttl, "900", 60, 86400,
      "Seconds an over-the-air enrollment challenge (Profile Service) stays valid."),
    L(enroll_pending_ttl, "3600", 60, 604800,
      "Seconds a started enrollment may take before it expires."),
    L(enroll_session_ttl, "1800", 60, 86400, "Seconds a portal sign-in lasts."),
    L(enroll_max_failures, "5", 1, 1000,
      "Failed portal sign-ins of one user (within enroll_failure_window) before a lock-out."),
    L(enroll_ip_max_failures, "50", 0, 100000,
      "Failed portal sign-ins from one address before it is locked out; 0 = no limit."),
    L(enroll_failure_window, "900", 10, 86400, "Seconds failed sign-ins are counted over."),
    L(enroll_lockout_seconds, "900", 1, 604800, "Seconds a lock-out lasts."),
    /* profiles and groups (issue 7) */
    L(profiles_converge_interval, "900", 0, 86400,
      "Seconds between configuration-profile convergence runs over every device (desired against\n"
      "installed); 0 turns the periodic run off (changes and ProfileList answers still converge)."),
    /* operators (issue 9) */
    L(console_session_ttl, "43200", 60, 2592000,
      "Seconds a web console session lasts after sign-in."),
    L(signin_max_failures, "5", 1, 1000,
      "Failed console sign-ins in a row that lock an admin account."),
    L(signin_lockout_seconds, "900", 1, 86400,
      "Seconds an admin account stays locked after signin_max_failures failures."),
    L(webhook_max_attempts, "10", 1, 100,
      "Delivery attempts per webhook event before it is marked failed."),
    L(webhook_timeout, "10", 1, 300, "Seconds one webhook delivery attempt may take."),
    L(webhook_retry_base, "5", 1, 3600,
      "Seconds before the first retry of a failed webhook delivery; each later retry waits twice as\n"
      "long as the one before, at most an hour."),
    L(webhook_log_days, "30", 0, 36500,
      "Days finished webhook deliveries stay in the delivery log; 0 keeps them forever."),
    /* push (issue 5): APNs provider and re-push */
    S(apns_url, "https://api.push.apple.com", 0,
      "APNs provider endpoint: https://api.push.apple.com (port 443; :2197 also works),\n"
      "https://api.sandbox.push.apple.com for development, or steward-apns-mock in tests.\n"
      "Empty turns pushing off."),
    S(apns_ca, "", 1,
      "CA bundle (PEM) that verifies the APNs server; empty uses the system's trust store."),
    L(apns_expiration, "86400", 0, 2592000,
      "Seconds APNs keeps a push for an offline device (apns-expiration); 0 = deliver once, no storing."),
    L(apns_priority, "10", 5, 10, "apns-priority of MDM pushes: 10 (immediately) or 5."),
    L(apns_connections, "2", 1, 64, "Most HTTP/2 connections to APNs per push certificate (topic)."),
    L(apns_streams, "500", 1, 10000, "Most concurrent pushes (streams) per APNs connection."),
    L(apns_timeout, "15", 1, 300, "Seconds one push may take before it is retried."),
    L(apns_ping_interval, "60", 1, 3600,
      "Seconds an idle APNs connection may stay silent before it is sent an HTTP/2 PING."),
    L(apns_ping_timeout, "5", 1, 300,
      "Seconds APNs has to answer a PING (or, while pushes wait, to send anything) before the "
      "connection is dropped and its pushes retried on a new one."),
    L(push_coalesce_ms, "200", 0, 60000,
      "Pushes requested for the same device within this many milliseconds are sent once."),
    L(push_retry_max, "5", 1, 50,
      "Attempts for a push APNs answers 429 or 5xx (or a connection error), with jittered back-off."),
    L(push_repush_after, "14400", 0, 31536000,
      "Devices with waiting commands not seen for this many seconds are pushed again (and again\n"
      "after as long); 0 turns the re-push off."),
    L(push_repush_interval, "300", 5, 86400, "Seconds between re-push checks."),
    L(command_expiry_interval, "30", 1, 86400,
      "Seconds between sweeps that mark commands past their ttl Expired on devices that never\n"
      "fetched them (a device that checks in has its own expired commands marked first)."),
    S(apps_base_url, "", 0,
      "HTTPS base URL devices fetch hosted apps from (https://host:port): the ManifestURL of an\n"
      "uploaded .ipa is <apps_base_url>/apps/<id>/manifest.plist. Empty: the Host of the API request."),
    L(compliance_interval, "3600", 0, 86400,
      "Seconds between scheduled evaluations of every device against the compliance policies\n"
      "(devices are also evaluated whenever an inventory answer arrives); 0 turns the schedule off.\n"
      "Grace periods and action delays are checked at each evaluation."),
    L(compliance_max_age, "604800", 0, 31536000,
      "Seconds after which inventory data counts as stale: a rule reading older (or missing) data\n"
      "makes the device's state \"unknown\" instead of compliant or not. 0: data never goes stale."),
};
#define NOPTIONS (sizeof options / sizeof options[0])

static const struct opt *opt_find(const char *name)
{
    for (size_t i = 0; i < NOPTIONS; i++)
        if (strcasecmp(options[i].name, name) == 0)
            return &options[i];
    return NULL;
}

static char *err_fmt(const char *fmt, const char *a, const char *b)
{
    char *s = NULL;
    if (asprintf(&s, fmt, a, b) < 0)
        return NULL;
    return s;
}

static int opt_set(struct config *c, const struct opt *o, const char *value, char **err)
{
    char *base = (char *)c;
    if (o->type == OPT_STR) {
        if (strlen(value) >= o->size) {
            *err = err_fmt("option %s: value too long (%s)", o->name, "");
            return -1;
        }
        memcpy(base + o->offset, value, strlen(value) + 1);
        return 0;
    }
    char *end = NULL;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (errno || end == value || *end != '\0' || v < o->min || v > o->max) {
        *err = err_fmt("option %s: invalid number '%s'", o->name, value);
        return -1;
    }
    memcpy(base + o->offset, &v, sizeof v);
    return 0;
}

void config_defaults(struct config *c, const char *data_dir)
{
    memset(c, 0, sizeof *c);
    snprintf(c->data_dir, sizeof c->data_dir, "%s", data_dir ? data_dir : "");
    for (size_t i = 0; i < NOPTIONS; i++) {
        char *err = NULL;
        if (opt_set(c, &options[i], options[i].def, &err) < 0)
            free(err); /* table defaults are valid; nothing to report */
    }
}

int config_set(struct config *c, const char *name, const char *value, char **err)
{
    const struct opt *o = opt_find(name);
    if (!o) {
        *err = err_fmt("unknown option '%s'%s", name, "");
        return -1;
    }
    return opt_set(c, o, value, err);
}

struct ini_state {
    struct config *c;
    char *err;
};

static int config_ini_line(void *user, const char *section, const char *name, const char *value)
{
    struct ini_state *st = user;
    (void)section; /* options are unique across sections; [server] etc. are for people */
    if (st->err)
        return 0;
    return config_set(st->c, name, value, &st->err) == 0;
}

int config_load_file(struct config *c, const char *path, char **err)
{
    struct ini_state st = {c, NULL};
    int rc = ini_parse(path, config_ini_line, &st);
    if (rc == 0)
        return 0;
    if (rc == -1) {
        *err = err_fmt("cannot open config file %s: %s", path, strerror(errno));
    } else if (st.err) {
        char line[32];
        snprintf(line, sizeof line, "%d", rc);
        char *e = NULL;
        if (asprintf(&e, "%s line %s: %s", path, line, st.err) < 0)
            e = NULL;
        free(st.err);
        *err = e;
    } else {
        char line[32];
        snprintf(line, sizeof line, "%d", rc);
        *err = err_fmt("%s line %s: syntax error", path, line);
    }
    return -1;
}

int config_apply_env(struct config *c, char **err)
{
    for (size_t i = 0; i < NOPTIONS; i++) {
        char var[96] = "STEWARD_";
        size_t n = strlen(var);
        for (const char *p = options[i].name; *p && n < sizeof var - 1; p++)
            var[n++] = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
        var[n] = '\0';
        const char *v = getenv(var);
        if (v && opt_set(c, &options[i], v, err) < 0)
            return -1;
    }
    return 0;
}

/* Rewrites dst (of size n) as prefix + dir + "/" + rest; leaves it unchanged
 * when the result would not fit (the file then simply is not found). */
static void prefix_path(char *dst, size_t n, const char *prefix, const char *dir, const char *rest)
{
    char tmp[CONFIG_STR * 3];
    int len = snprintf(tmp, sizeof tmp, "%s%s/%s", prefix, dir, rest);
    if (len < 0 || (size_t)len >= n)
        return;
    memcpy(dst, tmp, (size_t)len + 1);
}

void config_resolve_paths(struct config *c)
{
    char *base = (char *)c;
    if (!c->data_dir[0])
        return;
    for (size_t i = 0; i < NOPTIONS; i++) {
        const struct opt *o = &options[i];
        char *v = base + o->offset;
        if (o->is_path && *v && v[0] != '/')
            prefix_path(v, o->size, "", c->data_dir, v);
    }
    /* sqlite:relative → sqlite:<data_dir>/relative */
    if (strncmp(c->database, "sqlite:", 7) == 0 && c->database[7] != '/')
        prefix_path(c->database, sizeof c->database, "sqlite:", c->data_dir, c->database + 7);
}

static void write_doc(FILE *f, const char *doc)
{
    fputs("; ", f);
    for (const char *p = doc; *p; p++) {
        fputc(*p, f);
        if (*p == '\n')
            fputs("; ", f);
    }
    fputc('\n', f);
}

int config_write_file(const struct config *c, const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        return -1;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        return -1;
    }
    fputs("; steward.conf: steward's configuration. Every option is listed with its\n"
          "; documentation. STEWARD_<OPTION> environment variables and --set option=value\n"
          "; flags override this file. Relative paths are relative to the data dir.\n\n"
          "[steward]\n",
          f);
    const char *base = (const char *)c;
    for (size_t i = 0; i < NOPTIONS; i++) {
        const struct opt *o = &options[i];
        write_doc(f, o->doc);
        if (o->type == OPT_STR)
            fprintf(f, "%s = %s\n\n", o->name, o->is_path ? o->def : base + o->offset);
        else
            fprintf(f, "%s = %ld\n\n", o->name, *(const long *)(base + o->offset));
    }
    int bad = ferror(f);
    if (fclose(f) != 0 || bad)
        return -1;
    return 0;
}
