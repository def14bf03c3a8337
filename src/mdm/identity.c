/* identity.c (mdm): finds and verifies the certificate a device request comes
 * with, from one of three transports, in this order: the TLS client
 * certificate (an Mdm-Signature beside it must carry the same certificate),
 * an Mdm-Signature header (detached CMS over the body; works behind any
 * proxy), or an RFC 9440 Client-Cert header, believed only from configured
 * trusted proxies.
 * The storage-side binding check follows in core/identity.c. */
#include <string.h>

#include "mdm/mdm.h"
#include "pki/pki.h"
#include "util/config.h"

/* trusted_proxies is a comma-separated list of exact addresses. */
static int proxy_trusted(const struct config *cfg, const char *addr)
{
    const char *p = cfg->trusted_proxies;
    size_t alen = strlen(addr);
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *end = p;
        while (*end && *end != ',' && *end != ' ')
            end++;
        if ((size_t)(end - p) == alen && alen && strncmp(p, addr, alen) == 0)
            return 1;
        p = end;
    }
    return 0;
}

static int identity_from_signature(const struct worker *w, const struct request *req,
                                   const char *sig, char fp[65], const char **reason)
{
    X509 *signer = NULL;
    if (pki_verify_mdm_signature(w->svc->trust, sig, req->body, req->body_len, &signer, reason) < 0)
        return -1;
    pki_cert_fingerprint(signer, fp);
    X509_free(signer);
    return 0;
}

static int identity_from_proxy_header(const struct worker *w, const char *value, char fp[65], const char **reason)
{
    X509 *cert = pki_cert_from_rfc9440(value);
    if (!cert) {
        *reason = "Client-Cert header is not an RFC 9440 certificate";
        return -1;
    }
    int rc = pki_verify_device_cert(w->svc->trust, cert, NULL, reason);
    if (rc == 0)
        pki_cert_fingerprint(cert, fp);
    X509_free(cert);
    return rc;
}

/* The TLS client certificate, when the connection has one that chains to
 * the device trust. The handshake checks against steward's current CA only;
 * a certificate of the previous CA (rotation overlap) or of an external
 * enterprise CA (device_ca_files) is checked against the full trust. */
static int peer_cert_trusted(const struct worker *w, const struct request *req,
                             const char **reason)
{
    if (!req->peer_cert)
        return 0;
    return req->peer_verify == X509_V_OK ||
           pki_verify_device_cert(w->svc->trust, req->peer_cert, req->peer_chain, reason) == 0;
}

int mdm_identity(const struct worker *w, const struct request *req, char fp[65],
                 const char **reason)
{
    const char *sig = request_header(req, "Mdm-Signature");
    /* Over mutual TLS the handshake has proved the device's key and the
     * connection protects the body, so a trusted client certificate is the
     * identity. iOS also sends an Mdm-Signature on every request when the
     * profile's SignMessage is set; verifying it again would cost ten times
     * the rest of an Idle (bench/checkin, plain mode), so it is only held to
     * name the same certificate. A client certificate that does not verify
     * (another CA, a proxy's own) leaves the signature to decide. */
    if (peer_cert_trusted(w, req, reason)) {
        if (sig && pki_mdm_signature_names(sig, req->peer_cert, reason) < 0)
            return -1;
        pki_cert_fingerprint(req->peer_cert, fp);
        return 0;
    }
    if (sig)
        return identity_from_signature(w, req, sig, fp, reason);
    if (req->peer_cert)
        return -1; /* *reason from peer_cert_trusted */
    const char *hdr = request_header(req, "Client-Cert");
    if (hdr && proxy_trusted(w->svc->cfg, req->remote_addr))
        return identity_from_proxy_header(w, hdr, fp, reason);
    *reason = hdr ? "Client-Cert header from an untrusted address"
                  : "no device identity: no client certificate and no Mdm-Signature";
    return -1;
}
