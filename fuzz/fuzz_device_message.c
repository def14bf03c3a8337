/* fuzz_device_message.c: libFuzzer target for the bytes a device sends:
 * plist parsing (XML and binary), enrollment-id normalisation, report-status
 * checks, and command preparation, as the MDM front end runs them. */
#include <stddef.h>
#include <stdint.h>

#include "core/queue.h"
#include "mdm/mdm.h"
#include "plist/pl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *err = NULL;
    plist_t root = pl_parse_dict(data, size, &err);
    if (!root)
        return 0;
    struct mdm_message m = {.root = root};
    const char *reason = NULL;
    (void)mdm_message_ids(&m, &reason);
    (void)queue_status_valid(pl_str(root, "Status"));
    size_t len = 0;
    (void)pl_data(root, "Token", &len);
    (void)pl_bool(root, "AwaitingConfiguration", 0);
    if (queue_command_prepare(root, &reason) == 0) {
        char *xml = NULL;
        size_t xlen = 0;
        if (pl_to_xml(root, &xml, &xlen) == 0)
            free(xml);
    }
    plist_free(root);
    return 0;
}
