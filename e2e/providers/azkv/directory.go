// The fake's Entra ID directory: registered applications (client secret, certificate credential, federated identity
// credentials), trusted token issuers and managed identities, and the validation Entra ID applies to a token request
// once the directory is populated. With nothing registered the fake keeps granting every request (as before), so
// tests that do not care about credentials need no set-up.
//
// Test-control endpoints (HTTPS, same port; like moto's /moto-api, not part of any Azure API):
//
//	PUT /fake-admin/applications/{clientId}      {"clientSecret": "...", "certificate": "PEM",
//	                                              "federatedCredentials": [{"issuer","subject","audiences":[...]}]}
//	PUT /fake-admin/issuers                      {"issuer": "https://...", "jwks": {"keys": [...]}}
//	PUT /fake-admin/managed-identities/{clientId} {}
//
// Validation, with Entra ID's error codes and shapes ({"error","error_description","error_codes"}):
//   - unknown client_id: 400 unauthorized_client AADSTS700016;
//   - client_secret: must equal the registered secret, else 401 invalid_client AADSTS7000215;
//   - client_assertion with an x5t header (certificate credential): RS256 signature by the registered certificate's
//     key, x5t = its SHA-1 thumbprint, iss = sub = client_id, aud = this token endpoint's URL, within nbf/exp;
//   - any other client_assertion (federated credential, e.g. workload identity): a federated credential of the
//     application must match the token's iss and sub, and one of its audiences must be in the token's aud; the
//     signature must verify with a key of that issuer's JWKS (by kid) and the token must be within nbf/exp
//     (AADSTS70021 no matching federated identity record, AADSTS700024 not within its valid time range,
//     AADSTS700027 invalid signature).
//
// Real Entra ID fetches an issuer's JWKS through OIDC discovery; the test control plane's issuer is not reachable
// by name, so tests hand the apiserver's /openid/v1/jwks to PUT /fake-admin/issuers.
package main

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"
)

type federatedCredential struct {
	Issuer    string   `json:"issuer"`
	Subject   string   `json:"subject"`
	Audiences []string `json:"audiences"`
}

type application struct {
	ClientSecret         string                `json:"clientSecret"`
	Certificate          string                `json:"certificate"`
	FederatedCredentials []federatedCredential `json:"federatedCredentials"`
	cert                 *x509.Certificate
}

type directory struct {
	mu         sync.Mutex
	apps       map[string]*application
	issuers    map[string]map[string]*rsa.PublicKey // issuer -> kid -> key
	identities map[string]bool
}

func newDirectory() *directory {
	return &directory{apps: map[string]*application{}, issuers: map[string]map[string]*rsa.PublicKey{}, identities: map[string]bool{}}
}

type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	N   string `json:"n"`
	E   string `json:"e"`
}

func rsaFromJWK(k jwk) (*rsa.PublicKey, error) {
	n, err := base64.RawURLEncoding.DecodeString(k.N)
	if err != nil {
		return nil, err
	}
	e, err := base64.RawURLEncoding.DecodeString(k.E)
	if err != nil {
		return nil, err
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}, nil
}

// admin handles /fake-admin/...; it returns the operation name for the request log.
func (d *directory) admin(w http.ResponseWriter, r *http.Request) string {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if r.Method != http.MethodPut || len(parts) < 2 {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown fake-admin endpoint"})
		return "AdminUnknown"
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case parts[1] == "applications" && len(parts) == 3:
		var a application
		if err := json.NewDecoder(r.Body).Decode(&a); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return "AdminApplication"
		}
		if a.Certificate != "" {
			block, _ := pem.Decode([]byte(a.Certificate))
			if block == nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "certificate: no PEM block"})
				return "AdminApplication"
			}
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "certificate: " + err.Error()})
				return "AdminApplication"
			}
			a.cert = c
		}
		d.apps[parts[2]] = &a
		w.WriteHeader(http.StatusNoContent)
		return "AdminApplication"
	case parts[1] == "issuers" && len(parts) == 2:
		var body struct {
			Issuer string `json:"issuer"`
			JWKS   struct {
				Keys []jwk `json:"keys"`
			} `json:"jwks"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Issuer == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "want {issuer, jwks}"})
			return "AdminIssuer"
		}
		keys := map[string]*rsa.PublicKey{}
		for _, k := range body.JWKS.Keys {
			if k.Kty != "RSA" {
				continue
			}
			pub, err := rsaFromJWK(k)
			if err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "jwks: " + err.Error()})
				return "AdminIssuer"
			}
			keys[k.Kid] = pub
		}
		d.issuers[body.Issuer] = keys
		w.WriteHeader(http.StatusNoContent)
		return "AdminIssuer"
	case parts[1] == "managed-identities" && len(parts) == 3:
		d.identities[parts[2]] = true
		w.WriteHeader(http.StatusNoContent)
		return "AdminManagedIdentity"
	}
	writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown fake-admin endpoint"})
	return "AdminUnknown"
}

// entraError is Entra ID's token error shape.
type entraError struct {
	status int
	err    string
	code   int
	desc   string
}

func (e *entraError) write(w http.ResponseWriter) {
	writeJSON(w, e.status, map[string]any{
		"error": e.err, "error_description": fmt.Sprintf("AADSTS%d: %s", e.code, e.desc), "error_codes": []int{e.code},
		"timestamp": time.Now().UTC().Format("2006-01-02 15:04:05Z"), "trace_id": newID(), "correlation_id": newID(),
	})
}

type jwtClaims struct {
	Iss string          `json:"iss"`
	Sub string          `json:"sub"`
	Aud json.RawMessage `json:"aud"`
	Exp int64           `json:"exp"`
	Nbf int64           `json:"nbf"`
}

func (c *jwtClaims) audiences() []string {
	var one string
	if json.Unmarshal(c.Aud, &one) == nil {
		return []string{one}
	}
	var many []string
	_ = json.Unmarshal(c.Aud, &many)
	return many
}

type jwtHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	X5t string `json:"x5t"`
}

func parseJWT(tok string) (h jwtHeader, c jwtClaims, signed []byte, sig []byte, ok bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	cb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sb, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil || json.Unmarshal(hb, &h) != nil || json.Unmarshal(cb, &c) != nil {
		return
	}
	return h, c, []byte(parts[0] + "." + parts[1]), sb, true
}

func verifyRS256(pub *rsa.PublicKey, signed, sig []byte) bool {
	sum := sha256.Sum256(signed)
	return rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig) == nil
}

// checkTokenRequest validates a client_credentials request against the directory; nil means grant. With an empty
// directory every request is granted.
func (d *directory) checkTokenRequest(r *http.Request, endpoint string, tenant string) *entraError {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.apps) == 0 {
		return nil
	}
	form := r.PostForm
	clientID := form.Get("client_id")
	app := d.apps[clientID]
	if app == nil {
		return &entraError{400, "unauthorized_client", 700016, fmt.Sprintf(
			"Application with identifier '%s' was not found in the directory '%s'.", clientID, tenant)}
	}
	if secret := form.Get("client_secret"); secret != "" || form.Get("client_assertion") == "" {
		if app.ClientSecret == "" || secret != app.ClientSecret {
			return &entraError{401, "invalid_client", 7000215, fmt.Sprintf(
				"Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", clientID)}
		}
		return nil
	}
	if form.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		return &entraError{400, "invalid_request", 700023, "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer."}
	}
	h, c, signed, sig, ok := parseJWT(form.Get("client_assertion"))
	if !ok || h.Alg != "RS256" {
		return &entraError{400, "invalid_client", 50027, "JWT token is invalid or malformed (want an RS256 JWT)."}
	}
	now := time.Now().Unix()
	inTime := c.Exp > now-60 && c.Nbf <= now+60
	if h.X5t != "" {
		// Certificate credential of the application.
		if app.cert == nil {
			return &entraError{401, "invalid_client", 700027, "Client assertion failed signature validation. [Reason - The key was not found.]"}
		}
		thumb := sha1.Sum(app.cert.Raw)
		pub, isRSA := app.cert.PublicKey.(*rsa.PublicKey)
		if !isRSA || h.X5t != base64.RawURLEncoding.EncodeToString(thumb[:]) || !verifyRS256(pub, signed, sig) {
			return &entraError{401, "invalid_client", 700027, "Client assertion failed signature validation. [Reason - The key was not found or the signature does not match.]"}
		}
		if c.Iss != clientID || c.Sub != clientID {
			return &entraError{401, "invalid_client", 700021, "Client assertion application identifier doesn't match 'client_id' parameter."}
		}
		audOK := false
		for _, a := range c.audiences() {
			if a == endpoint || strings.TrimSuffix(a, "/") == strings.Replace(endpoint, "/oauth2/v2.0/token", "", 1) {
				audOK = true
			}
		}
		if !audOK {
			return &entraError{401, "invalid_client", 70023, fmt.Sprintf("Client assertion audience claim does not match Realm issuer %s.", endpoint)}
		}
		if !inTime {
			return &entraError{401, "invalid_client", 700024, "Client assertion is not within its valid time range."}
		}
		return nil
	}
	// Federated identity credential (workload identity).
	var match *federatedCredential
	for i := range app.FederatedCredentials {
		fc := &app.FederatedCredentials[i]
		if fc.Issuer != c.Iss || fc.Subject != c.Sub {
			continue
		}
		for _, want := range fc.Audiences {
			for _, got := range c.audiences() {
				if want == got {
					match = fc
				}
			}
		}
	}
	if match == nil {
		return &entraError{400, "invalid_client", 70021, fmt.Sprintf(
			"No matching federated identity record found for presented assertion. Assertion Issuer: '%s'. Assertion Subject: '%s'. Assertion Audience: '%s'.",
			c.Iss, c.Sub, strings.Join(c.audiences(), ","))}
	}
	keys := d.issuers[c.Iss]
	pub := keys[h.Kid]
	if pub == nil || !verifyRS256(pub, signed, sig) {
		return &entraError{400, "invalid_client", 700027, fmt.Sprintf(
			"Client assertion failed signature validation. [Reason - The key was not found for issuer '%s', kid '%s'.]", c.Iss, h.Kid)}
	}
	if !inTime {
		return &entraError{400, "invalid_client", 700024, "Client assertion is not within its valid time range."}
	}
	return nil
}

// checkManagedIdentity: with managed identities registered, a requested client_id must be one of them.
func (d *directory) checkManagedIdentity(r *http.Request) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	id := r.URL.Query().Get("client_id")
	if len(d.identities) == 0 || id == "" || d.identities[id] {
		return ""
	}
	return "Identity not found"
}
