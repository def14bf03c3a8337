/* scep.h: the SCEP server front end (RFC 8894) at /scep: GetCACaps,
 * GetCACert, PKIOperation by GET (base64 message) and POST (binary), and the
 * CRL at /scep/crl. Decodes with scep/message.c, decides with core/certs.c,
 * answers with a CertRep. Routed by app/router.c. */
#ifndef STEWARD_SCEP_H
#define STEWARD_SCEP_H

#include "core/service.h"
#include "http/http.h"

struct certs_policy;
struct config;
/* The issuance policy the configuration asks for (scep_* options). */
void scep_policy(const struct config *cfg, struct certs_policy *p);

void scep_handle(struct worker *w, struct request *req, struct response *resp);
void scep_handle_crl(struct worker *w, struct request *req, struct response *resp);

#endif
