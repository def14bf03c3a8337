/* devsim.h: the parts of steward-devsim shared between its files: options
 * (main.c parses them), a simulated device (device.c), the HTTPS transport
 * (transport.c), the protocol flows (flow.c) and the fleet runner with its
 * report (load.c). Internal to src/devsim/. */
#ifndef STEWARD_DEVSIM_H
#define STEWARD_DEVSIM_H

#include "devsim/answers.h"
#include "util/buf.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

struct pki_ca;

enum devsim_verb { DEVSIM_ENROLL, DEVSIM_CONNECT, DEVSIM_CHECKOUT, DEVSIM_RUN, DEVSIM_RENEW };

struct devsim_opts {
    enum devsim_verb verb;
    char *checkin_url; /* full URLs, malloc'd by main.c */
    char *connect_url;
    char *scep_url;         /* --scep: enroll identities over SCEP; NULL without */
    char *api_url;          /* base URL for POST /api/v1/scep/challenges; may be NULL */
    const char *challenge;  /* --challenge: the SCEP challengePassword to send */
    const char *api_key;    /* --api-key / STEWARD_API_KEY: fetch one challenge per device */
    int poll_interval;      /* seconds between CertPolls while PENDING */
    int poll_max;           /* CertPolls before giving up */
    const char *ca_file;    /* verifies the server; also reported by CertificateList */
    const char *cert_file;  /* one identity for every device */
    const char *key_file;
    const char *issue_from; /* steward data dir: issue per-device certs from its CA */
    const char *state_dir;
    const char *udid;       /* overrides for a single device */
    const char *serial;
    const char *topic;
    const char *seed;       /* fleet seed; default random or from state */
    int count;
    int concurrency;
    int idle_rounds;
    int max_commands; /* per connect session, guards against a server loop */
    int signature;
    int mtls;
    int insecure;
    int ec_keys;
    int json;
    int verbose;
    struct devsim_policy policy;
    /* --method profile|ota (ota.c): enroll as iOS does from a profile */
    const char *method;        /* NULL: the classic flow */
    const char *enroll_user;   /* portal sign-in (ota) */
    const char *enroll_password;
    const char *device_ca_cert; /* "Apple" CA that issues the device certificate (ota) */
    const char *device_ca_key;
    int ota_stop;               /* --ota-stop 2|3: stop after that phase's SCEP (tests) */
};

/* Material loaded once and shared read-only by all workers. */
struct devsim_shared {
    struct pki_ca *ca;   /* --issue-from, else NULL */
    X509 *fixed_cert;    /* --cert/--key, else NULL */
    EVP_PKEY *fixed_key;
    uint8_t *ca_der;     /* reported by CertificateList; may be NULL */
    size_t ca_der_len;
    char ca_cn[128];
    char seed[65];
};

struct devsim_device {
    int index;
    struct devsim_facts facts;
    struct devsim_seen seen;
    X509 *cert; /* identity, may be NULL (no mTLS, no signature) */
    EVP_PKEY *key;
    char *cert_pem; /* the same as PEM text, for libcurl blobs */
    char *key_pem;
    uint8_t *cert_der;
    char dir[4096]; /* state directory, "" without --state */
};

/* device.c */
/* Loads device `index` from its state directory or makes it (and its
 * certificate) from the fleet seed. NULL with *err malloc'd. */
struct devsim_device *devsim_device_open(const struct devsim_opts *o,
                                         const struct devsim_shared *sh, int index, char **err);
/* Writes the device's state (identity, push credentials, profiles). 0 or -1. */
int devsim_device_save(const struct devsim_device *d);
void devsim_device_free(struct devsim_device *d); /* accepts NULL */
/* Makes cert/key the device's identity (ownership taken, also on failure):
 * replaces the old one, rewrites cert.pem/key.pem in its state directory and
 * the PEM/DER copies used by the transport. 0 or -1. */
int devsim_device_set_identity(struct devsim_device *d, X509 *cert, EVP_PKEY *key);
/* Loads --issue-from/--cert/--key/--ca material and the fleet seed. 0 or -1 with *err. */
int devsim_shared_load(const struct devsim_opts *o, struct devsim_shared *sh, char **err);
void devsim_shared_clear(struct devsim_shared *sh);

/* transport.c */
struct devsim_http;
struct devsim_http_resp {
    long status;      /* HTTP status, 0 on a transport failure */
    struct buf body;  /* response body; caller buf_free()s */
    char error[256];  /* transport failure text */
};
struct devsim_http *devsim_http_new(const struct devsim_opts *o, char **err);
void devsim_http_free(struct devsim_http *h); /* accepts NULL */
/* PUTs body as device d (client cert and/or Mdm-Signature per options).
 * Returns 0 when an HTTP response arrived (any status), -1 otherwise. */
int devsim_http_put(struct devsim_http *h, const struct devsim_device *d, const char *url,
                    const char *content_type, const char *body, size_t len,
                    struct devsim_http_resp *resp);

/* A plain request as iOS's SCEP client or an enrollment portal makes it: no
 * client certificate, no Mdm-Signature. method is "GET" or "POST" (body,
 * content_type used only for POST); extra_header ("Name: value") may be NULL.
 * Returns 0 when an HTTP response arrived (any status), -1 otherwise. */
int devsim_http_plain(struct devsim_http *h, const char *method, const char *url,
                      const char *content_type, const char *extra_header, const void *body,
                      size_t len, struct devsim_http_resp *resp);

/* Turns on the handle's cookie engine (as Safari keeps the portal's
 * cookies) and forgets all cookies. 0 or -1. */
int devsim_http_cookies_reset(struct devsim_http *h);

/* load.c: what happened, for the summary. One per worker, merged at the end. */
struct devsim_cmd_rec {
    char udid[64];
    char command_uuid[64];
    char request_type[64];
    const char *status;
};

struct devsim_err_rec {
    char udid[64];
    char phase[16];
    long http_status;
    char *message; /* malloc'd */
};

struct devsim_dev_rec {
    int index;
    int ok;
    char udid[64];
    char serial[24];
};

#define DEVSIM_MAX_CODES 16

struct devsim_report {
    size_t devices, devices_failed, requests;
    long codes[DEVSIM_MAX_CODES];
    size_t code_counts[DEVSIM_MAX_CODES];
    size_t n_codes;
    struct devsim_cmd_rec *cmds;
    size_t n_cmds, cap_cmds;
    struct devsim_err_rec *errs;
    size_t n_errs, cap_errs;
    struct devsim_dev_rec *devs;
    size_t n_devs, cap_devs;
};

void devsim_report_http(struct devsim_report *r, long status);
int devsim_report_cmd(struct devsim_report *r, const char *udid, const struct devsim_result *res);
int devsim_report_err(struct devsim_report *r, const char *udid, const char *phase,
                      long http_status, const char *message);
int devsim_report_dev(struct devsim_report *r, const struct devsim_device *d, int index, int ok);
/* Moves everything from src into dst (src is left empty). 0 or -1. */
int devsim_report_merge(struct devsim_report *dst, struct devsim_report *src);
void devsim_report_free(struct devsim_report *r);

/* Runs the verb for every device; fills *rep and *elapsed. 0 when every
 * request got 200, 1 when some did not, -1 on a setup failure (*err). */
int devsim_run_fleet(const struct devsim_opts *o, struct devsim_report *rep, double *elapsed,
                     char **err);
/* Prints the JSON summary to stdout. 0 or -1. */
int devsim_print_json(const struct devsim_opts *o, const struct devsim_report *rep,
                      double elapsed);

/* flow.c: one device's conversation. 0 when every request got 200. */
int devsim_flow_enroll(const struct devsim_opts *o, struct devsim_http *h,
                       struct devsim_device *d, struct devsim_report *r);
int devsim_flow_connect(const struct devsim_opts *o, struct devsim_http *h,
                        struct devsim_device *d, struct devsim_report *r);
int devsim_flow_checkout(const struct devsim_opts *o, struct devsim_http *h,
                         struct devsim_device *d, struct devsim_report *r);


/* ota.c: --method profile (the signed enrollment profile from the API, as
 * Apple Configurator installs it) or ota (portal sign-in, Profile Service
 * phases 1-3, decrypting the final profile), then SCEP with the profile's
 * challenge and Authenticate/TokenUpdate at its URLs, then the verb's
 * remaining steps. 0 when every step succeeded. */
int devsim_method_run(const struct devsim_opts *o, struct devsim_http *h,
                      struct devsim_device *d, struct devsim_report *r);

/* scep.c: the device's identity over SCEP (RFC 8894), as iOS gets it from a
 * SCEP payload. 0 on success (identity set and saved), -1 (printed, reported). */
int devsim_scep_enroll(const struct devsim_opts *o, struct devsim_http *h,
                       struct devsim_device *d, struct devsim_report *r);
/* RenewalReq signed by the current identity, with a new key. */
int devsim_scep_renew(const struct devsim_opts *o, struct devsim_http *h,
                      struct devsim_device *d, struct devsim_report *r);

#endif
