/* fuzz_api_json.c: libFuzzer target for operator JSON: parsing with jansson,
 * the JSON → plist mapping of commands, and back. */
#include <jansson.h>

#include "api/api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
    if (!j)
        return 0;
    char err[256];
    plist_t p = json_to_plist(j, err, sizeof err);
    if (p) {
        json_t *back = plist_to_json(p);
        json_decref(back);
        plist_free(p);
    }
    json_decref(j);
    return 0;
}
