// Key Vault keys and certificates, the part ESO's `key/` and `cert/` object types read (added for the Azure
// provider's tests; wire format of the published Key Vault REST API 7.x):
//
//	PUT  /keys/{name}                     ImportKey: {"key": JWK, "tags", "attributes"} -> KeyBundle (an RSA JWK with
//	                                      its private parts n, e, d, p, q can then encrypt/decrypt)
//	POST /keys/{name}/create              CreateKey: {"kty": "RSA"|"RSA-HSM", "key_size": 2048|3072|4096, "tags"} -> KeyBundle
//	GET  /keys/{name}[/{version}]         GetKey -> KeyBundle {"key": public JWK with kid, "attributes", "tags"}
//	POST /keys/{name}[/{version}]/{op}    op = encrypt | decrypt | wrapkey | unwrapkey:
//	                                      {"alg": "RSA-OAEP-256"|"RSA-OAEP"|"RSA1_5", "value": base64url} -> {"kid", "value"}
//	                                      (SOPS's azure_kv keys use encrypt/decrypt with RSA-OAEP-256); a value that
//	                                      does not decrypt is 400 BadParameter, as Key Vault answers it
//	POST /certificates/{name}/import      ImportCertificate: {"value": base64 PEM or DER certificate, "tags"}
//	GET  /certificates/{name}[/{version}] GetCertificate -> {"id","kid","sid","x5t","cer","attributes","tags"}
//
// Private key material is never returned (as Key Vault). PKCS#12 import is not served (the standard library has no
// PKCS#12 parser). Unknown names: 404 KeyNotFound / CertificateNotFound.
package main

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"time"
)

type objectVersion struct {
	id    string
	jwk   map[string]any  // keys
	rsa   *rsa.PrivateKey // keys that can encrypt/decrypt (created here, or imported with their private parts)
	der   []byte          // certificates
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
		ov := &objectVersion{id: newID(), jwk: body.Key, rsa: privateFromJWK(body.Key), tags: body.Tags, attrs: newAttrs()}
		v.objs.keys[parts[1]] = append(v.objs.keys[parts[1]], ov)
		writeJSON(w, http.StatusOK, v.keyBundle(parts[1], ov))
		return "ImportKey"
	case parts[0] == "keys" && len(parts) == 3 && parts[2] == "create" && r.Method == http.MethodPost:
		var body struct {
			Kty     string            `json:"kty"`
			KeySize int               `json:"key_size"`
			Tags    map[string]string `json:"tags"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || (body.Kty != "RSA" && body.Kty != "RSA-HSM") {
			kvError(w, http.StatusBadRequest, "BadParameter", "azkv-fake creates RSA keys only ({\"kty\": \"RSA\"})")
			return "CreateKey"
		}
		size := body.KeySize
		if size == 0 {
			size = 2048
		}
		if size != 2048 && size != 3072 && size != 4096 {
			kvError(w, http.StatusBadRequest, "BadParameter", "key_size must be 2048, 3072 or 4096")
			return "CreateKey"
		}
		priv, err := rsa.GenerateKey(rand.Reader, size)
		if err != nil {
			kvError(w, http.StatusInternalServerError, "InternalError", err.Error())
			return "CreateKey"
		}
		b64 := base64.RawURLEncoding.EncodeToString
		jwk := map[string]any{
			"kty": "RSA", "n": b64(priv.N.Bytes()), "e": b64(big.NewInt(int64(priv.E)).Bytes()),
			"key_ops": []string{"encrypt", "decrypt", "wrapKey", "unwrapKey"},
		}
		ov := &objectVersion{id: newID(), jwk: jwk, rsa: priv, tags: body.Tags, attrs: newAttrs()}
		v.objs.keys[parts[1]] = append(v.objs.keys[parts[1]], ov)
		writeJSON(w, http.StatusOK, v.keyBundle(parts[1], ov))
		return "CreateKey"
	case parts[0] == "keys" && (len(parts) == 3 || len(parts) == 4) && r.Method == http.MethodPost && cryptoOps[strings.ToLower(parts[len(parts)-1])] != "":
		op := cryptoOps[strings.ToLower(parts[len(parts)-1])]
		ver := ""
		if len(parts) == 4 {
			ver = parts[2]
		}
		ov := pick(v.objs.keys[parts[1]], ver)
		if ov == nil {
			kvError(w, http.StatusNotFound, "KeyNotFound", fmt.Sprintf("A key with (name/id) %s was not found in this key vault.", parts[1]))
			return op
		}
		v.keyOperation(w, r, parts[1], ov, op)
		return op
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

// cryptoOps maps the path's last segment to the operation name of the request log.
var cryptoOps = map[string]string{"encrypt": "Encrypt", "decrypt": "Decrypt", "wrapkey": "WrapKey", "unwrapkey": "UnwrapKey"}

// privateFromJWK is the private key of an imported RSA JWK, or nil when it has no private parts.
func privateFromJWK(jwk map[string]any) *rsa.PrivateKey {
	num := func(k string) *big.Int {
		s, _ := jwk[k].(string)
		b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
		if err != nil || len(b) == 0 {
			return nil
		}
		return new(big.Int).SetBytes(b)
	}
	n, e, d, p, q := num("n"), num("e"), num("d"), num("p"), num("q")
	if n == nil || e == nil || d == nil || p == nil || q == nil || !e.IsInt64() {
		return nil
	}
	priv := &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: n, E: int(e.Int64())}, D: d, Primes: []*big.Int{p, q}}
	if priv.Validate() != nil {
		return nil
	}
	priv.Precompute()
	return priv
}

// keyOperation answers encrypt/decrypt/wrapKey/unwrapKey with the RSA key of ov.
func (v *vault) keyOperation(w http.ResponseWriter, r *http.Request, name string, ov *objectVersion, op string) {
	var body struct {
		Alg   string `json:"alg"`
		Value string `json:"value"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		kvError(w, http.StatusBadRequest, "BadParameter", "invalid JSON body: "+err.Error())
		return
	}
	if ov.rsa == nil {
		kvError(w, http.StatusBadRequest, "BadParameter", "azkv-fake: this key has no private RSA material (create it, or import it with d, p and q)")
		return
	}
	in, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(body.Value, "="))
	if err != nil {
		kvError(w, http.StatusBadRequest, "BadParameter", "value is not base64url")
		return
	}
	var out []byte
	encrypting := op == "Encrypt" || op == "WrapKey"
	switch body.Alg {
	case "RSA-OAEP-256", "RSA-OAEP":
		var h crypto.Hash = crypto.SHA256
		if body.Alg == "RSA-OAEP" {
			h = crypto.SHA1
		}
		if encrypting {
			out, err = rsa.EncryptOAEP(h.New(), rand.Reader, &ov.rsa.PublicKey, in, nil)
		} else {
			out, err = rsa.DecryptOAEP(h.New(), nil, ov.rsa, in, nil)
		}
	case "RSA1_5":
		if encrypting {
			out, err = rsa.EncryptPKCS1v15(rand.Reader, &ov.rsa.PublicKey, in)
		} else {
			out, err = rsa.DecryptPKCS1v15(nil, ov.rsa, in)
		}
	default:
		kvError(w, http.StatusBadRequest, "BadParameter", fmt.Sprintf("unsupported algorithm %q", body.Alg))
		return
	}
	if err != nil {
		kvError(w, http.StatusBadRequest, "BadParameter", "Bad Request: the operation failed")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"kid":   fmt.Sprintf("%s/keys/%s/%s", v.base, name, ov.id),
		"value": base64.RawURLEncoding.EncodeToString(out),
	})
}
