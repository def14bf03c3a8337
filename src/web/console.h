/* console.h: the web console's files (every file in web/console), compiled into the
 * binary by cmake/embed_console.cmake, and the routes that serve them at
 * /console/ with headers that keep a page from running anything but its own
 * scripts (a strict Content-Security-Policy, no framing, no sniffing). The
 * console itself talks only to the public REST API. */
#ifndef STEWARD_WEB_CONSOLE_H
#define STEWARD_WEB_CONSOLE_H

#include <stddef.h>

#include "core/service.h"
#include "http/http.h"

struct console_asset {
    const char *name; /* file name in web/console, e.g. "app.js" */
    const char *content_type;
    const unsigned char *data; /* NUL-terminated (not counted in len) */
    size_t len;
};
extern const struct console_asset console_assets[];
extern const size_t console_assets_count;

/* The asset of that name, or NULL. */
const struct console_asset *console_asset_find(const char *name);

/* GET /console (redirects to /console/), GET /console/ (index.html) and
 * GET /console/{file}. */
void console_redirect(struct worker *w, struct request *req, struct response *resp);
void console_index(struct worker *w, struct request *req, struct response *resp);
void console_file(struct worker *w, struct request *req, struct response *resp, const char *name);

#endif
