/* fuzz_mdm_signature.c: libFuzzer target for the Mdm-Signature header and
 * the RFC 9440 Client-Cert header, both parsed from outside bytes before any
 * identity is known. The input's first half is the header, the rest the body. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pki/pki.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct pki_trust *trust;

/* A trust store needs a CA file; make one once per process. */
static struct pki_trust *fuzz_trust(void)
{
    if (trust)
        return trust;
    char dir[] = "/tmp/steward-fuzz.XXXXXX";
    if (!mkdtemp(dir))
        abort();
    char cert[64], key[64];
    snprintf(cert, sizeof cert, "%s/ca.pem", dir);
    snprintf(key, sizeof key, "%s/ca.key", dir);
    char *err = NULL;
    if (pki_ca_create(cert, key, "fuzz", &err) < 0)
        abort();
    trust = pki_trust_new(cert, &err);
    if (!trust)
        abort();
    return trust;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pki_trust *t = fuzz_trust();
    size_t hlen = size / 2;
    char *header = malloc(hlen + 1);
    if (!header)
        return 0;
    memcpy(header, data, hlen);
    header[hlen] = '\0';
    X509 *signer = NULL;
    const char *reason = NULL;
    if (pki_verify_mdm_signature(t, header, data + hlen, size - hlen, &signer, &reason) == 0)
        X509_free(signer);
    X509 *c = pki_cert_from_rfc9440(header);
    X509_free(c);
    c = pki_cert_from_der(data, size);
    X509_free(c);
    free(header);
    return 0;
}
