/* fuzz_scep_message.c: libFuzzer target for SCEP pkiMessages, which arrive
 * from anyone on the network before any identity is known: CMS parsing,
 * signed attributes, the envelope and the CSR inside. */
#include <stdio.h>
#include <stdlib.h>

#include "pki/pki.h"
#include "scep/message.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct pki_ca *ca;

/* The CA a message is addressed to; made once per process. */
static struct pki_ca *fuzz_ca(void)
{
    if (ca)
        return ca;
    char dir[] = "/tmp/steward-fuzz-scep.XXXXXX";
    if (!mkdtemp(dir))
        abort();
    char cert[64], key[64];
    snprintf(cert, sizeof cert, "%s/ca.pem", dir);
    snprintf(key, sizeof key, "%s/ca.key", dir);
    char *err = NULL;
    if (pki_ca_create(cert, key, "fuzz", &err) < 0 || !(ca = pki_ca_load(cert, key, &err)))
        abort();
    return ca;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pki_ca *c = fuzz_ca();
    struct scep_request *req = NULL, *partial = NULL;
    int fail_info = 0;
    const char *reason = NULL;
    if (scep_request_parse(data, size, c->cert, c->key, &req, &partial, &fail_info, &reason) == 0)
        scep_request_free(req);
    scep_request_free(partial);
    return 0;
}
