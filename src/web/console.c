/* console.c: serves the embedded web console (console.h). The files are
 * static, so each answer carries an ETag from the build's content and the
 * security headers every console page needs. */
#include "web/console.h"

#include <stdio.h>
#include <string.h>

#include "util/ids.h"

const struct console_asset *console_asset_find(const char *name)
{
    for (size_t i = 0; i < console_assets_count; i++)
        if (strcmp(console_assets[i].name, name) == 0)
            return &console_assets[i];
    return NULL;
}

static void security_headers(struct response *resp)
{
    response_add_header(resp, "Content-Security-Policy",
                        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' "
                        "data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
                        "form-action 'self'");
    response_add_header(resp, "X-Content-Type-Options", "nosniff");
    response_add_header(resp, "X-Frame-Options", "DENY");
    response_add_header(resp, "Referrer-Policy", "no-referrer");
}

static void send_asset(struct request *req, struct response *resp, const struct console_asset *a)
{
    char etag[80], hash[65];
    ids_sha256_hex(a->data, a->len, hash);
    snprintf(etag, sizeof etag, "\"%.32s\"", hash);
    const char *inm = request_header(req, "If-None-Match");
    if (inm && strcmp(inm, etag) == 0) {
        response_set(resp, 304, "", NULL, 0);
    } else if (response_set(resp, 200, a->content_type, a->data, a->len) < 0) {
        response_text(resp, 500, "out of memory");
        return;
    }
    response_add_header(resp, "ETag", etag);
    response_add_header(resp, "Cache-Control", "no-cache");
    security_headers(resp);
}

void console_redirect(struct worker *w, struct request *req, struct response *resp)
{
    (void)w;
    (void)req;
    response_set(resp, 308, "text/plain; charset=utf-8", "/console/\n", 10);
    response_add_header(resp, "Location", "/console/");
}

void console_index(struct worker *w, struct request *req, struct response *resp)
{
    console_file(w, req, resp, "index.html");
}

void console_file(struct worker *w, struct request *req, struct response *resp, const char *name)
{
    (void)w;
    const struct console_asset *a = console_asset_find(name);
    if (!a) {
        response_text(resp, 404, "no such console file");
        return;
    }
    send_asset(req, resp, a);
}
