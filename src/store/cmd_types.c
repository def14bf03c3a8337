/* cmd_types.c: the RequestType of the commands this store handle delivered
 * lately, by CommandUUID.
 *
 * A device's report names its command only by CommandUUID, and what the
 * report needs (stored alone, or with a handler or audit after it:
 * store_report_check.follow_types) depends on the command's RequestType. The
 * claim that delivered the command read its type already, and a command's
 * type never changes (commands are never updated or deleted), so the report
 * that usually follows on the same worker needs no read to learn it
 * (core.c's report_next_pg then runs a statement without that lookup, or
 * none at all). A miss only means the statement looks the type up itself:
 * the memo holds nothing another node, or a later request, depends on.
 *
 * Direct-mapped by a hash of the uuid: a newer command takes its slot's
 * place. Fixed-size entries, allocated on first use; a uuid or type longer
 * than an entry is not remembered. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"

#define CMD_TYPES_SLOTS 64
#define CMD_TYPES_UUID 64 /* a CommandUUID longer than 63 bytes is not remembered */
#define CMD_TYPES_TYPE 64

struct store_cmd_types {
    struct {
        char uuid[CMD_TYPES_UUID];
        char type[CMD_TYPES_TYPE];
    } slot[CMD_TYPES_SLOTS];
};

static size_t slot_of(const char *uuid)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)uuid; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h % CMD_TYPES_SLOTS;
}

void store_cmd_type_note(struct store *s, const char *uuid, const char *type)
{
    if (!uuid || !*uuid || !type || strlen(uuid) >= CMD_TYPES_UUID ||
        strlen(type) >= CMD_TYPES_TYPE)
        return;
    if (!s->cmd_types && !(s->cmd_types = calloc(1, sizeof *s->cmd_types)))
        return; /* out of memory: the statements look types up themselves */
    size_t i = slot_of(uuid);
    strcpy(s->cmd_types->slot[i].uuid, uuid);
    strcpy(s->cmd_types->slot[i].type, type);
}

const char *store_cmd_type_known(struct store *s, const char *uuid)
{
    if (!s->cmd_types || !uuid || !*uuid)
        return NULL;
    size_t i = slot_of(uuid);
    return strcmp(s->cmd_types->slot[i].uuid, uuid) == 0 ? s->cmd_types->slot[i].type : NULL;
}

void store_cmd_types_free(struct store *s)
{
    free(s->cmd_types);
    s->cmd_types = NULL;
}
