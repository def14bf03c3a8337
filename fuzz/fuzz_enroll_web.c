/* fuzz_enroll_web.c: libFuzzer target for what the enrollment portal and
 * the over-the-air route read from outside: form bodies and Cookie headers
 * (web/session.c), HTML escaping of what is echoed, and the signed device
 * attributes (CMS SignedData holding a plist dictionary). */
#include <stdlib.h>
#include <string.h>

#include "pki/cms.h"
#include "plist/pl.h"
#include "web/session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char buf[256];
    static const char *const fields[] = {"username", "password", "csrf", ""};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        (void)web_form_get(data, size, fields[i], buf, sizeof buf);

    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    struct http_header h = {"Cookie", text};
    struct request req;
    memset(&req, 0, sizeof req);
    req.headers = &h;
    req.nheaders = 1;
    (void)web_cookie_get(&req, "__Host-steward_enroll", buf, sizeof buf);
    (void)web_cookie_get(&req, "__Host-steward_enroll_csrf", buf, sizeof buf);
    struct buf b = {0};
    (void)web_html_escape(&b, text);
    buf_free(&b);
    free(text);

    uint8_t *content = NULL;
    size_t clen = 0;
    X509 *signer = NULL;
    STACK_OF(X509) *others = NULL;
    const char *why = NULL;
    if (cms_verify(data, size, NULL, 0, &content, &clen, &signer, &others, &why) == 0) {
        plist_t p = content ? pl_parse_dict(content, clen, &why) : NULL;
        (void)pl_str(p, "UDID");
        (void)pl_str(p, "CHALLENGE");
        plist_free(p);
    }
    free(content);
    X509_free(signer);
    if (others)
        sk_X509_pop_free(others, X509_free);
    return 0;
}
