// Key Vault keys and certificates, the part ESO's `key/` and `cert/` object types read (added for the Azure
// provider's tests; wire format of the published Key Vault REST API 7.x):
//
//	PUT  /keys/{name}                     ImportKey: {"key": JWK, "tags", "attributes"} -> KeyBundle
//	GET  /keys/{name}[/{version}]         GetKey -> KeyBundle {"key": public JWK with kid, "attributes", "tags"}
//	POST /certificates/{name}/import      ImportCertificate: {"value": base64 PEM or DER certificate, "tags"}
//	GET  /certificates/{name}[/{version}] GetCertificate -> {"id","kid","sid","x5t","cer","attributes","tags"}
//
// Private key material is never returned (as Key Vault). PKCS#12 import is not served (the standard library has no
// PKCS#12 parser). Unknown names: 404 KeyNotFound / CertificateNotFound.
package main

import (
	"crypto/sha1"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"time"
)

type objectVersion struct {
	id    string
	jwk   map[string]any // keys
	der   []byte         // certificates
	tags  map[string]string
	attrs attributes
}

type objectStore struct {
	keys  map[string][]*objectVersion
	certs map[string][]*objectVersion
}

func newObjectStore() *objectStore {
	return &objectStore{keys: map[string][]*objectVersion{}, certs: map[string][]*objectVersion{}}
}

func pick(versions []*objectVersion, id string) *objectVersion {
	if len(versions) == 0 {
		return nil
	}
	if id == "" {
		return versions[len(versions)-1]
	}
	for _, v := range versions {
		if v.id == id {
			return v
		}
	}
	return nil
}

func (v *vault) keyBundle(name string, ov *objectVersion) map[string]any {
	jwk := map[string]any{}
	for k, val := range ov.jwk {
		switch k {
		case "d", "p", "q", "dp", "dq", "qi", "k":
			continue // private parts stay in the vault
		}
		jwk[k] = val
	}
	jwk["kid"] = fmt.Sprintf("%s/keys/%s/%s", v.base, name, ov.id)
	b := map[string]any{"key": jwk, "attributes": ov.attrs}
	if len(ov.tags) > 0 {
		b["tags"] = ov.tags
	}
	return b
}

func (v *vault) certBundle(name string, ov *objectVersion) map[string]any {
	thumb := sha1.Sum(ov.der)
	b := map[string]any{
		"id":         fmt.Sprintf("%s/certificates/%s/%s", v.base, name, ov.id),
		"kid":        fmt.Sprintf("%s/keys/%s/%s", v.base, name, ov.id),
		"sid":        fmt.Sprintf("%s/secrets/%s/%s", v.base, name, ov.id),
		"x5t":        base64.RawURLEncoding.EncodeToString(thumb[:]),
		"cer":        base64.StdEncoding.EncodeToString(ov.der),
		"attributes": ov.attrs,
	}
	if len(ov.tags) > 0 {
		b["tags"] = ov.tags
	}
	return b
}

// objects handles /keys/... and /certificates/...; v.mu is held. It returns the operation name, or "" when the
// request is not for keys or certificates.
func (v *vault) objects(w http.ResponseWriter, r *http.Request, parts []string) string {
	now := time.Now().Unix()
	enabled := true
	newAttrs := func() attributes {
		return attributes{Enabled: &enabled, Created: now, Updated: now, RecoveryLevel: "Recoverable+Purgeable", RecoverableDays: 90}
	}
	switch {
	case parts[0] == "keys" && len(parts) == 2 && r.Method == http.MethodPut:
		var body struct {
			Key  map[string]any    `json:"key"`
			Tags map[string]string `json:"tags"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Key == nil || body.Key["kty"] == nil {
			kvError(w, http.StatusBadRequest, "BadParameter", "ImportKey needs a JSON body with a JWK \"key\" (kty required)")
			return "ImportKey"
		}
		ov := &objectVersion{id: newID(), jwk: body.Key, tags: body.Tags, attrs: newAttrs()}
		v.objs.keys[parts[1]] = append(v.objs.keys[parts[1]], ov)
		writeJSON(w, http.StatusOK, v.keyBundle(parts[1], ov))
		return "ImportKey"
	case parts[0] == "keys" && (len(parts) == 2 || len(parts) == 3) && r.Method == http.MethodGet:
		ver := ""
		if len(parts) == 3 {
			ver = parts[2]
		}
		ov := pick(v.objs.keys[parts[1]], ver)
		if ov == nil {
			kvError(w, http.StatusNotFound, "KeyNotFound", fmt.Sprintf("A key with (name/id) %s was not found in this key vault.", parts[1]))
			return "GetKey"
		}
		writeJSON(w, http.StatusOK, v.keyBundle(parts[1], ov))
		return "GetKey"
	case parts[0] == "certificates" && len(parts) == 3 && parts[2] == "import" && r.Method == http.MethodPost:
		var body struct {
			Value string            `json:"value"`
			Tags  map[string]string `json:"tags"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			kvError(w, http.StatusBadRequest, "BadParameter", "invalid JSON body: "+err.Error())
			return "ImportCertificate"
		}
		raw, err := base64.StdEncoding.DecodeString(body.Value)
		if err != nil {
			raw = []byte(body.Value) // PEM may also be sent as text
		}
		der := raw
		for rest := raw; ; {
			var block *pem.Block
			block, rest = pem.Decode(rest)
			if block == nil {
				break
			}
			if block.Type == "CERTIFICATE" {
				der = block.Bytes
				break
			}
		}
		if _, err := x509.ParseCertificate(der); err != nil {
			kvError(w, http.StatusBadRequest, "BadParameter", "azkv-fake imports PEM or DER certificates only: "+err.Error())
			return "ImportCertificate"
		}
		ov := &objectVersion{id: newID(), der: der, tags: body.Tags, attrs: newAttrs()}
		v.objs.certs[parts[1]] = append(v.objs.certs[parts[1]], ov)
		writeJSON(w, http.StatusOK, v.certBundle(parts[1], ov))
		return "ImportCertificate"
	case parts[0] == "certificates" && (len(parts) == 2 || len(parts) == 3) && r.Method == http.MethodGet:
		ver := ""
		if len(parts) == 3 {
			ver = parts[2]
		}
		ov := pick(v.objs.certs[parts[1]], ver)
		if ov == nil {
			kvError(w, http.StatusNotFound, "CertificateNotFound", fmt.Sprintf("A certificate with (name/id) %s was not found in this key vault.", parts[1]))
			return "GetCertificate"
		}
		writeJSON(w, http.StatusOK, v.certBundle(parts[1], ov))
		return "GetCertificate"
	}
	return ""
}
