/* ctl.h: the pieces of stewardctl, the operator CLI over steward's REST API
 * (docs/api.md, docs/stewardctl.md). main.c parses the command line with
 * args.c and dispatches to one handler per command (devices.c, commands.c,
 * service.c); handlers talk to the server through client.c and print with
 * table.c. Nothing here is part of the steward library. */
#ifndef STEWARD_CTL_H
#define STEWARD_CTL_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#include "util/buf.h"

/* Process exit codes. */
enum { CTL_EXIT_OK = 0, CTL_EXIT_FAIL = 1, CTL_EXIT_USAGE = 2 };

#define CTL_DEFAULT_URL "https://localhost:8443"
#define CTL_DEFAULT_TIMEOUT 30 /* seconds for a whole request */

/* ---- the command line (args.c) ------------------------------------------ */

/* Global flags, accepted before or after the command words. Strings point
 * into argv or the environment; nothing here is owned. */
struct ctl_opts {
    const char *url;     /* base URL, no trailing slash needed */
    const char *api_key; /* never printed */
    const char *cacert;
    int insecure;
    int json;
    long timeout; /* seconds */
    int help;
};

/* One option a command accepts (long form only, "--name"). */
struct ctl_optspec {
    const char *name;
    int has_value;
};

/* An option as given, in command-line order (repeatable ones appear once per use). */
struct ctl_flag {
    const char *name;
    const char *value; /* NULL for flags without a value */
};

/* A command line with the global flags and the command words taken out.
 * The arrays are owned (ctl_args_free); the strings point into argv. */
struct ctl_args {
    const char **pos;
    size_t npos;
    struct ctl_flag *flags;
    size_t nflags;
};

/* Fills o from the environment (STEWARD_URL, STEWARD_API_KEY, STEWARD_CACERT)
 * and the built-in defaults. */
void ctl_opts_defaults(struct ctl_opts *o);

/* Finds the command words (up to max of them: "devices", "list") in argv[1..],
 * skipping global flags and the options of the spec lists in all (NULL
 * terminated; may be NULL) with their values, stopping at an unknown option
 * or "--". Stores their argv indices in idx; returns how many were found. */
size_t ctl_args_words(int argc, char **argv, size_t max, int *idx,
                      const struct ctl_optspec *const *all);

/* Parses argv[1..] against the global flags and the command's specs (NULL
 * terminated by a spec with name NULL; specs may be NULL). The nwords argv
 * indices in words are skipped. Returns 0, or -1 after printing a usage
 * error to err (out is then empty). */
int ctl_args_parse(int argc, char **argv, const int *words, size_t nwords,
                   const struct ctl_optspec *specs, struct ctl_opts *opts, struct ctl_args *out,
                   FILE *err);

void ctl_args_free(struct ctl_args *a);

/* The last value given for option name, or NULL. */
const char *ctl_args_get(const struct ctl_args *a, const char *name);
/* 1 when option name was given at all. */
int ctl_args_has(const struct ctl_args *a, const char *name);
/* How many times option name was given. */
size_t ctl_args_count(const struct ctl_args *a, const char *name);

/* ---- HTTP client (client.c) --------------------------------------------- */

struct ctl_client;

/* One answer of the server. body is NUL-terminated (possibly empty). */
struct ctl_response {
    long status;
    char *body;
    size_t len;
    json_t *json; /* the body parsed, when it is JSON; else NULL */
};

/* A client for the server at opts->url. Returns NULL (after printing why to
 * err) when libcurl cannot be set up or the URL is unusable. opts must
 * outlive the client. */
struct ctl_client *ctl_client_new(const struct ctl_opts *opts, FILE *err);
void ctl_client_free(struct ctl_client *c);

/* Sends method path (path already encoded, may carry "?query") with an
 * optional JSON body. auth adds the API key. Returns 0 with r filled for any
 * HTTP status, or -1 after printing what failed to err (connection refused,
 * TLS verification, timeout, missing API key…). Free r with
 * ctl_response_free. */
int ctl_request(struct ctl_client *c, const char *method, const char *path, const json_t *body,
                int auth, struct ctl_response *r);
void ctl_response_free(struct ctl_response *r);
/* ctl_request with a raw body of the given Content-Type (an .ipa upload);
 * always authenticated. */
int ctl_request_raw(struct ctl_client *c, const char *method, const char *path,
                    const void *data, size_t len, const char *type, struct ctl_response *r);

/* Percent-encodes everything but RFC 3986 unreserved characters, for a path
 * segment or a query value. Returns a malloc'd string (caller frees) or NULL. */
char *ctl_url_encode(const char *s);

/* Appends "?k=v" or "&k=v" (both encoded) to b. Returns 0 or -1. */
int ctl_query_add(struct buf *b, const char *key, const char *value);

/* The "message" of an error body ({"error": {"message": …}}), else a
 * sanitised first line of a text body, else a generic phrase. Writes into out. */
void ctl_error_message(const struct ctl_response *r, char *out, size_t n);

/* ---- output (table.c) --------------------------------------------------- */

struct ctl_table;

/* A table with ncols columns headed by headers (copied). NULL on OOM. */
struct ctl_table *ctl_table_new(size_t ncols, const char *const *headers);
/* Appends a row of ncols cells (copied; NULL or "" prints as "-"). 0 or -1. */
int ctl_table_add(struct ctl_table *t, const char *const *cells);
size_t ctl_table_rows(const struct ctl_table *t);
/* Renders the header and rows, columns aligned (two spaces apart, no
 * trailing blanks), into b. Control characters in cells become '?' so device-
 * supplied text cannot drive the terminal. Returns 0 or -1. */
int ctl_table_render(const struct ctl_table *t, struct buf *b);
void ctl_table_free(struct ctl_table *t);

/* Display width of UTF-8 text: code points, not bytes. */
size_t ctl_text_width(const char *s);
/* Appends s with control characters (C0, DEL, C1) replaced by '?'. 0 or -1. */
int ctl_put_clean(struct buf *b, const char *s);

/* A JSON scalar as table text: strings as is, numbers, true/false, null as
 * NULL (printed "-"); arrays and objects compact JSON. Returns a malloc'd
 * string or NULL for null/missing. */
char *ctl_json_text(const json_t *v);

/* A paged list answer ({"<key>": [objects], "total", "offset"}) as a table of
 * the given fields and a closing count line ("3 of 3 devices", "No
 * certificates."). nouns are the singular and plural. -1 when the answer
 * lacks the shape or memory runs out. */
struct ctl_list_view {
    const char *key;
    size_t ncols;
    const char *const *headers;
    const char *const *fields;
    const char *singular, *plural;
};
int ctl_render_list(const json_t *answer, const struct ctl_list_view *v, struct buf *out);

/* "key: value" lines for every member of obj, keys padded to one width. */
int ctl_render_keyvalues(const json_t *obj, struct buf *b);

/* ---- the run context and handlers --------------------------------------- */

struct ctl {
    struct ctl_opts opts;
    struct ctl_client *client; /* made on first use by ctl_connect */
    FILE *out;
    FILE *err;
};

/* The context's client, created on first call. NULL after printing why. */
struct ctl_client *ctl_connect(struct ctl *c);

/* Prints r's body as pretty JSON on c->out (--json mode). Non-JSON bodies
 * are printed as they are. */
void ctl_print_json(struct ctl *c, const struct ctl_response *r);
/* For a status >= 400: prints "stewardctl: <message> (HTTP <status>)" to
 * c->err and returns 1. Returns 0 for a success status. */
int ctl_report_http_error(struct ctl *c, const struct ctl_response *r);
/* An authenticated API call: sends the request, prints the body in --json
 * mode, reports an HTTP error. Returns CTL_EXIT_OK for a success status,
 * else CTL_EXIT_FAIL (message printed); r is filled whenever the server
 * answered. Free r with ctl_response_free in every case. */
int ctl_call(struct ctl *c, const char *method, const char *path, const json_t *body,
             struct ctl_response *r);
/* Reports an answer that lacks the documented shape; returns CTL_EXIT_FAIL. */
int ctl_unexpected(struct ctl *c, const struct ctl_response *r);
/* Prints "stewardctl: <fmt…>" and a newline to c->err. */
void ctl_fail(struct ctl *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Writes b to c->out; returns 0 or -1. */
int ctl_write(struct ctl *c, const struct buf *b);

/* GETs path and prints the answer: as JSON under --json, else through
 * render (a table); an answer render cannot read is reported. Returns a
 * CTL_EXIT_* code. */
typedef int (*ctl_render_fn)(const json_t *answer, struct buf *out);
int ctl_get_and_render(struct ctl *c, const char *path, ctl_render_fn render);

/* Handlers: each returns a process exit code. */
int ctl_devices_list(struct ctl *c, const struct ctl_args *a);
int ctl_devices_show(struct ctl *c, const struct ctl_args *a);
int ctl_commands_send(struct ctl *c, const struct ctl_args *a);
int ctl_commands_list(struct ctl *c, const struct ctl_args *a);
int ctl_commands_cancel(struct ctl *c, const struct ctl_args *a);
int ctl_version(struct ctl *c, const struct ctl_args *a);
int ctl_health(struct ctl *c, const struct ctl_args *a);

/* Option specs of the handlers (terminated by a NULL name). */
extern const struct ctl_optspec ctl_devices_list_opts[];
extern const struct ctl_optspec ctl_commands_send_opts[];
extern const struct ctl_optspec ctl_commands_list_opts[];

/* ---- pure helpers of commands.c, unit-tested ---------------------------- */

/* Types a --set value: "true"/"false" -> bool, a decimal int64 without
 * leading zeros -> integer, anything else -> string. New reference. */
json_t *ctl_set_value(const char *text);
/* Applies "Key=Value" (Key may be dotted: "A.B=1") to obj. Returns 0, or -1
 * with a reason in why (malformed, or a key that is both a value and a dict). */
int ctl_set_apply(json_t *obj, const char *assignment, char *why, size_t n);
/* Builds the "command" object from --type, --set… and --queries. Returns a
 * new object or NULL with a reason in why. */
json_t *ctl_command_from_flags(const struct ctl_args *a, char *why, size_t n);

/* A non-negative decimal integer option (e.g. --limit). 1 if valid. */
int ctl_is_count(const char *s);

#endif
