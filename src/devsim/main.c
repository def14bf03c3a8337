/* main.c: steward-devsim's command line. Parses options into struct
 * devsim_opts, runs enroll/connect/checkout/run/renew for one device or a fleet
 * (load.c), prints a summary (text or --json) and exits 0 only when every
 * request got HTTP 200, 1 when some did not, 2 on a usage or setup error. */
#include "devsim/devsim.h"

#include "util/log.h"

#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RULES 64

static const char usage_text[] =
    "usage: steward-devsim [options] enroll|connect|checkout|run|renew\n"
    "  enroll    Authenticate + TokenUpdate     connect   Idle, then answer commands\n"
    "  checkout  CheckOut                       run       enroll, then connect\n"
    "  renew     SCEP RenewalReq with the current identity (needs --scep)\n"
    "server:\n"
    "  --url URL             base URL (env STEWARD_URL); /mdm/checkin and /mdm/connect appended\n"
    "  --checkin-url URL     full check-in URL        --connect-url URL   full command URL\n"
    "  --single-url [URL]    one URL for both (default <url>/mdm)\n"
    "  --ca FILE             CA bundle that verifies the server (env STEWARD_CACERT)\n"
    "  -k, --insecure        do not verify the server certificate\n"
    "identity:\n"
    "  --cert FILE --key FILE   one client identity (PEM) for every device\n"
    "  --issue-from DIR      issue each device a certificate from DIR/ca/ca.{pem,key}\n"
    "  --key-type rsa|ec     key of issued certificates (default rsa, 2048 bits)\n"
    "  --signature           send Mdm-Signature over each body\n"
    "  --no-mtls             do not present the client certificate in TLS\n"
    "scep:\n"
    "  --scep [URL]          enroll each device without an identity over SCEP (default <url>/scep)\n"
    "  --challenge TEXT      challengePassword to send (static or one-time)\n"
    "  --api-key KEY         else fetch a one-time challenge per device (env STEWARD_API_KEY)\n"
    "  --poll-interval S     seconds between CertPolls while pending (default 1)\n"
    "  --poll-max N          CertPolls before giving up (default 30)\n"
    "devices:\n"
    "  --state DIR           keep each device in DIR/device-NNNNN (identity, cert, token)\n"
    "  --count N             number of devices (default 1)\n"
    "  --concurrency C       parallel workers (default 1)\n"
    "  --seed S              fleet seed for deterministic identifiers\n"
    "  --udid U --serial S   identifiers of a single device\n"
    "  --topic T             APNs topic (default com.apple.mgmt.External.<uuid>)\n"
    "behaviour:\n"
    "  --notnow TYPE         answer NotNow to RequestType TYPE (repeatable, * = all)\n"
    "  --notnow-once [TYPE]  NotNow only the first time a command is seen (alone: for\n"
    "                        every --notnow type)\n"
    "  --error TYPE[:CODE]   answer Error with an ErrorChain (MCMDMErrorDomain)\n"
    "  --idle-rounds N       command sessions per device (default 1)\n"
    "  --max-commands N      commands per session before giving up (default 1000)\n"
    "enrollment profile (instead of --scep/--cert/--issue-from):\n"
    "  --method profile      install the signed profile from /api/v1/enroll/profile (--api-key)\n"
    "  --method ota          sign in to /enroll, Profile Service phases 1-3, decrypt the profile\n"
    "  --enroll-user U --enroll-password P   portal sign-in (env STEWARD_ENROLL_PASSWORD)\n"
    "  --device-ca-cert F --device-ca-key F  CA issuing the device certificate that signs\n"
    "                        the attributes (Apple's iPhone Device CA on a real device)\n"
    "  --ota-stop 2|3        stop after phase 2's SCEP, or phase 3's, before check-in (tests)\n"
    "output:\n"
    "  --json                JSON summary on stdout       -v, -vv   log requests, libcurl\n";

struct cli {
    struct devsim_opts o;
    struct devsim_rule rules[MAX_RULES];
    size_t n_rules;
    const char *url;
    const char *checkin_url, *connect_url, *single_url;
    const char *scep_url;
    int single;
    int scep;
    int notnow_once_all;
    const char *verb;
};

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "steward-devsim: ");
    fprintf(stderr, fmt, arg ? arg : "");
    fprintf(stderr, "\n(steward-devsim --help for usage)\n");
    return -1;
}

static int parse_int(const char *s, const char *name, int min, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || errno || !end || *end || end == s || v < min || v > INT_MAX)
        return usage_error("bad number for %s", name);
    *out = (int)v;
    return 0;
}

static int add_rule(struct cli *c, const char *spec, enum devsim_rule_kind kind)
{
    if (c->n_rules == MAX_RULES)
        return usage_error("too many --notnow/--error rules%s", NULL);
    struct devsim_rule *r = &c->rules[c->n_rules];
    memset(r, 0, sizeof *r);
    const char *colon = kind == DEVSIM_RULE_ERROR ? strchr(spec, ':') : NULL;
    size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
    if (len == 0 || len >= sizeof r->request_type)
        return usage_error("bad RequestType '%s'", spec);
    memcpy(r->request_type, spec, len);
    r->kind = kind;
    if (colon) {
        int code = 0;
        if (parse_int(colon + 1, "--error CODE", 1, &code) != 0)
            return -1;
        r->error_code = code;
    }
    c->n_rules++;
    return 0;
}

static int is_verb(const char *s)
{
    return strcmp(s, "enroll") == 0 || strcmp(s, "connect") == 0 ||
           strcmp(s, "checkout") == 0 || strcmp(s, "run") == 0 || strcmp(s, "renew") == 0;
}

/* The optional argument of --single-url/--notnow-once: the next word when
 * it is not an option or a verb (RequestTypes are CamelCase, verbs not). */
static const char *optional_arg(int argc, char **argv, int *i, const char *inline_val)
{
    if (inline_val)
        return inline_val;
    if (*i + 1 < argc && argv[*i + 1][0] != '-' && !is_verb(argv[*i + 1]))
        return argv[++*i];
    return NULL;
}

/* Options that take a value, with where the value goes. */
static int take_string_opt(struct cli *c, const char *name, const char *val)
{
    struct {
        const char *name;
        const char **dst;
    } map[] = {
        {"--url", &c->url},           {"--checkin-url", &c->checkin_url},
        {"--connect-url", &c->connect_url}, {"--ca", &c->o.ca_file},
        {"--cert", &c->o.cert_file},  {"--key", &c->o.key_file},
        {"--issue-from", &c->o.issue_from}, {"--state", &c->o.state_dir},
        {"--udid", &c->o.udid},       {"--serial", &c->o.serial},
        {"--topic", &c->o.topic},     {"--seed", &c->o.seed},
        {"--challenge", &c->o.challenge}, {"--api-key", &c->o.api_key},
        {"--enroll-user", &c->o.enroll_user}, {"--enroll-password", &c->o.enroll_password},
        {"--device-ca-cert", &c->o.device_ca_cert}, {"--device-ca-key", &c->o.device_ca_key},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(map[i].name, name) == 0) {
            *map[i].dst = val;
            return 1;
        }
    return 0;
}

static int take_valued(struct cli *c, const char *name, const char *val)
{
    if (take_string_opt(c, name, val))
        return 0;
    if (strcmp(name, "--count") == 0)
        return parse_int(val, name, 1, &c->o.count);
    if (strcmp(name, "--concurrency") == 0)
        return parse_int(val, name, 1, &c->o.concurrency);
    if (strcmp(name, "--idle-rounds") == 0)
        return parse_int(val, name, 1, &c->o.idle_rounds);
    if (strcmp(name, "--max-commands") == 0)
        return parse_int(val, name, 1, &c->o.max_commands);
    if (strcmp(name, "--poll-interval") == 0)
        return parse_int(val, name, 0, &c->o.poll_interval);
    if (strcmp(name, "--poll-max") == 0)
        return parse_int(val, name, 0, &c->o.poll_max);
    if (strcmp(name, "--notnow") == 0)
        return add_rule(c, val, DEVSIM_RULE_NOTNOW);
    if (strcmp(name, "--error") == 0)
        return add_rule(c, val, DEVSIM_RULE_ERROR);
    if (strcmp(name, "--ota-stop") == 0) {
        if (parse_int(val, name, 2, &c->o.ota_stop) != 0 || c->o.ota_stop > 3)
            return usage_error("--ota-stop is 2 or 3%s", NULL);
        return 0;
    }
    if (strcmp(name, "--method") == 0) {
        if (strcmp(val, "profile") != 0 && strcmp(val, "ota") != 0)
            return usage_error("--method is profile or ota, not %s", val);
        c->o.method = val;
        return 0;
    }
    if (strcmp(name, "--key-type") == 0) {
        if (strcmp(val, "rsa") != 0 && strcmp(val, "ec") != 0)
            return usage_error("--key-type is rsa or ec, not %s", val);
        c->o.ec_keys = strcmp(val, "ec") == 0;
        return 0;
    }
    return usage_error("unknown option %s", name);
}

static int take_flag(struct cli *c, const char *name)
{
    if (strcmp(name, "--signature") == 0)
        c->o.signature = 1;
    else if (strcmp(name, "--no-mtls") == 0)
        c->o.mtls = 0;
    else if (strcmp(name, "--insecure") == 0 || strcmp(name, "-k") == 0)
        c->o.insecure = 1;
    else if (strcmp(name, "--json") == 0)
        c->o.json = 1;
    else if (strcmp(name, "-v") == 0 || strcmp(name, "--verbose") == 0)
        c->o.verbose++;
    else if (strcmp(name, "-vv") == 0)
        c->o.verbose += 2;
    else
        return 0;
    return 1;
}

static const char *const valued[] = {
    "--url", "--checkin-url", "--connect-url", "--ca", "--cert", "--key", "--issue-from",
    "--state", "--udid", "--serial", "--topic", "--seed", "--count", "--concurrency",
    "--idle-rounds", "--max-commands", "--notnow", "--error", "--key-type", "--challenge",
    "--api-key", "--poll-interval", "--poll-max", "--method", "--enroll-user",
    "--enroll-password", "--device-ca-cert", "--device-ca-key", "--ota-stop",
};

static int is_valued(const char *name)
{
    for (size_t i = 0; i < sizeof valued / sizeof valued[0]; i++)
        if (strcmp(valued[i], name) == 0)
            return 1;
    return 0;
}

static int parse_one(struct cli *c, int argc, char **argv, int *i)
{
    char name[64];
    const char *arg = argv[*i], *eq = strchr(arg, '=');
    const char *inline_val = eq && arg[0] == '-' ? eq + 1 : NULL;
    snprintf(name, sizeof name, "%.*s", inline_val ? (int)(eq - arg) : (int)strlen(arg), arg);
    if (arg[0] != '-') {
        if (c->verb)
            return usage_error("unexpected argument %s", arg);
        c->verb = arg;
        return 0;
    }
    if (!inline_val && take_flag(c, name))
        return 0;
    if (strcmp(name, "--single-url") == 0) {
        c->single = 1;
        c->single_url = optional_arg(argc, argv, i, inline_val);
        return 0;
    }
    if (strcmp(name, "--scep") == 0) {
        c->scep = 1;
        c->scep_url = optional_arg(argc, argv, i, inline_val);
        return 0;
    }
    if (strcmp(name, "--notnow-once") == 0) {
        const char *t = optional_arg(argc, argv, i, inline_val);
        if (!t)
            c->notnow_once_all = 1;
        return t ? add_rule(c, t, DEVSIM_RULE_NOTNOW_ONCE) : 0;
    }
    if (!is_valued(name))
        return usage_error("unknown option %s", name);
    if (!inline_val && *i + 1 >= argc)
        return usage_error("%s needs a value", name);
    return take_valued(c, name, inline_val ? inline_val : argv[++*i]);
}

static char *join_url(const char *base, const char *path)
{
    char *out = NULL;
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/')
        n--;
    if (asprintf(&out, "%.*s%s", (int)n, base, path) < 0)
        return NULL;
    return out;
}

/* The challenge API lives on the server's base URL: --url, else the
 * scheme and authority of the SCEP URL. */
static char *api_base(const struct cli *c)
{
    if (c->url)
        return join_url(c->url, "");
    const char *s = strstr(c->o.scep_url, "://");
    size_t n = s ? (size_t)(s + 3 - c->o.scep_url) + strcspn(s + 3, "/?") : 0;
    return n ? strndup(c->o.scep_url, n) : NULL;
}

static int resolve_scep_urls(struct cli *c)
{
    struct devsim_opts *o = &c->o;
    if (!c->scep)
        return 0;
    if (!c->scep_url && !c->url)
        return usage_error("--scep needs a URL, or --url (or STEWARD_URL)%s", NULL);
    o->scep_url = c->scep_url ? strdup(c->scep_url) : join_url(c->url, "/scep");
    if (!o->scep_url)
        return usage_error("out of memory%s", NULL);
    o->api_url = api_base(c); /* NULL: only --challenge works */
    return 0;
}

static int resolve_urls(struct cli *c)
{
    struct devsim_opts *o = &c->o;
    if (c->single && c->single_url) {
        o->checkin_url = strdup(c->single_url);
        o->connect_url = strdup(c->single_url);
    } else {
        int need_base = c->single || !c->checkin_url || !c->connect_url;
        if (need_base && !c->url)
            return usage_error("--url (or STEWARD_URL) is required%s", NULL);
        o->checkin_url = c->single         ? join_url(c->url, "/mdm")
                         : c->checkin_url ? strdup(c->checkin_url)
                                          : join_url(c->url, "/mdm/checkin");
        o->connect_url = c->single         ? join_url(c->url, "/mdm")
                         : c->connect_url ? strdup(c->connect_url)
                                          : join_url(c->url, "/mdm/connect");
    }
    if (!o->checkin_url || !o->connect_url)
        return usage_error("out of memory%s", NULL);
    if (c->o.method && !(o->api_url = join_url(c->url, "")))
        return usage_error("out of memory%s", NULL);
    return resolve_scep_urls(c);
}

static int set_verb(struct cli *c)
{
    static const struct {
        const char *name;
        enum devsim_verb verb;
    } verbs[] = {{"enroll", DEVSIM_ENROLL},
                 {"connect", DEVSIM_CONNECT},
                 {"checkout", DEVSIM_CHECKOUT},
                 {"run", DEVSIM_RUN},
                 {"renew", DEVSIM_RENEW}};
    if (!c->verb)
        return usage_error("missing command: enroll, connect, checkout, run or renew%s", NULL);
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (strcmp(verbs[i].name, c->verb) == 0) {
            c->o.verb = verbs[i].verb;
            return 0;
        }
    return usage_error("unknown command %s", c->verb);
}

static int check_combinations(struct cli *c)
{
    struct devsim_opts *o = &c->o;
    if (!o->cert_file != !o->key_file)
        return usage_error("--cert and --key go together%s", NULL);
    if ((o->udid || o->serial) && o->count > 1)
        return usage_error("--udid/--serial name one device; drop them or --count%s", NULL);
    if (o->cert_file && o->issue_from)
        return usage_error("choose --cert/--key or --issue-from%s", NULL);
    if (c->scep && (o->cert_file || o->issue_from))
        return usage_error("--scep enrolls its own identities: drop --cert/--issue-from%s", NULL);
    if (o->method && (c->scep || o->cert_file || o->issue_from))
        return usage_error("--method gets its identity from the profile: drop --scep/--cert/--issue-from%s", NULL);
    if (o->method && !c->url)
        return usage_error("--method needs --url (or STEWARD_URL)%s", NULL);
    if (!o->device_ca_cert != !o->device_ca_key)
        return usage_error("--device-ca-cert and --device-ca-key go together%s", NULL);
    if (o->verb == DEVSIM_RENEW && !c->scep)
        return usage_error("renew needs --scep%s", NULL);
    /* bare --notnow-once: every --notnow rule answers NotNow once per command */
    for (size_t i = 0; c->notnow_once_all && i < c->n_rules; i++)
        if (c->rules[i].kind == DEVSIM_RULE_NOTNOW)
            c->rules[i].kind = DEVSIM_RULE_NOTNOW_ONCE;
    o->policy.rules = c->rules;
    o->policy.n_rules = c->n_rules;
    return 0;
}

static int parse_args(struct cli *c, int argc, char **argv)
{
    memset(c, 0, sizeof *c);
    c->o.count = 1;
    c->o.concurrency = 1;
    c->o.idle_rounds = 1;
    c->o.max_commands = 1000;
    c->o.mtls = 1;
    c->o.poll_interval = 1;
    c->o.poll_max = 30;
    c->url = getenv("STEWARD_URL");
    c->o.api_key = getenv("STEWARD_API_KEY");
    c->o.enroll_password = getenv("STEWARD_ENROLL_PASSWORD");
    c->o.ca_file = getenv("STEWARD_CACERT");
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(usage_text, stdout);
            exit(0);
        }
        if (parse_one(c, argc, argv, &i) != 0)
            return -1;
    }
    if (c->url && !*c->url)
        c->url = NULL;
    if (c->o.ca_file && !*c->o.ca_file)
        c->o.ca_file = NULL;
    if (c->o.api_key && !*c->o.api_key)
        c->o.api_key = NULL;
    if (set_verb(c) || check_combinations(c) || resolve_urls(c))
        return -1;
    return 0;
}

static void print_text_summary(const struct devsim_opts *o, const struct devsim_report *r,
                               double elapsed)
{
    for (size_t i = 0; o->verbose && i < r->n_cmds; i++)
        printf("%s %s %s %s\n", r->cmds[i].udid, r->cmds[i].command_uuid,
               r->cmds[i].request_type, r->cmds[i].status);
    printf("devices=%zu failed=%zu requests=%zu commands=%zu errors=%zu elapsed=%.3fs "
           "rps=%.1f\n",
           r->devices, r->devices_failed, r->requests, r->n_cmds, r->n_errs, elapsed,
           elapsed > 0 ? (double)r->requests / elapsed : 0.0);
}

static void free_urls(struct devsim_opts *o)
{
    free(o->checkin_url);
    free(o->connect_url);
    free(o->scep_url);
    free(o->api_url);
}

int main(int argc, char **argv)
{
    struct cli c;
    if (parse_args(&c, argc, argv) != 0) {
        free_urls(&c.o);
        return 2;
    }
    log_set_level(c.o.verbose ? LOG_INFO : LOG_WARN);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "steward-devsim: cannot initialise libcurl\n");
        return 2;
    }
    struct devsim_report rep;
    double elapsed = 0;
    char *err = NULL;
    int rc = devsim_run_fleet(&c.o, &rep, &elapsed, &err);
    int exit_code = rc < 0 ? 2 : rc;
    if (rc < 0)
        fprintf(stderr, "steward-devsim: %s\n", err ? err : "setup failed");
    else if (c.o.json ? devsim_print_json(&c.o, &rep, elapsed) != 0
                      : (print_text_summary(&c.o, &rep, elapsed), 0))
        exit_code = 2;
    free(err);
    devsim_report_free(&rep);
    free_urls(&c.o);
    curl_global_cleanup();
    return exit_code;
}
