/* fuzz_profile.c: libFuzzer target for uploaded configuration profiles:
 * import (XML, binary, CMS-signed), validation against the payload tables,
 * secret stripping; and the same bytes as a JSON build spec. */
#include <jansson.h>

#include "profiles/profile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[PROFILE_ERR_MAX];
    char *signer = NULL;
    plist_t root = profile_import(data, size, &signer, err, sizeof err);
    free(signer);
    if (root) {
        struct profile_check c;
        if (profile_validate(root, &c, err, sizeof err) == 0)
            profile_check_free(&c);
        plist_free(profile_strip_secrets(root));
        plist_free(root);
    }
    json_error_t jerr;
    json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
    if (j) {
        plist_free(profile_build(j, err, sizeof err));
        json_decref(j);
    }
    return 0;
}
