package main

// Cloud KMS symmetric keys over the service's HTTP/JSON mapping (the google.api.http rules of the published
// google.cloud.kms.v1.KeyManagementService, as the REST clients such as the Rust crate google-cloud-kms-v1 use it),
// for SOPS documents whose data keys are wrapped by `gcp_kms` master keys. Served on the REST side of the same
// port, with the same token check and request log as Secret Manager:
//
//	POST /v1/{parent=projects/*/locations/*}/keyRings?keyRingId=R                       CreateKeyRing
//	POST /v1/{parent=projects/*/locations/*/keyRings/*}/cryptoKeys?cryptoKeyId=K        CreateCryptoKey (ENCRYPT_DECRYPT)
//	POST /v1/{name=projects/*/locations/*/keyRings/*/cryptoKeys/*}:encrypt  {"plaintext", "additionalAuthenticatedData"}
//	POST /v1/{name=projects/*/locations/*/keyRings/*/cryptoKeys/*}:decrypt  {"ciphertext", "additionalAuthenticatedData"}
//
// bytes fields are base64, CRC32C checksums (Int64Value) decimal strings, as protojson writes them. Each key is an
// AES-256-GCM key made here; a ciphertext is nonce || sealed, so one that was changed, or made by another key,
// fails as Cloud KMS fails it: 400 INVALID_ARGUMENT "Decryption failed: the ciphertext is invalid.".

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"hash/crc32"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var (
	kmsLocationRE = regexp.MustCompile(`^projects/[^/]+/locations/[^/]+$`)
	kmsRingRE     = regexp.MustCompile(`^projects/[^/]+/locations/[^/]+/keyRings/[^/]+$`)
	kmsKeyRE      = regexp.MustCompile(`^(projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+)(/cryptoKeyVersions/[^/]+)?$`)
	kmsIDRE       = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,63}$`)
)

type kmsStore struct {
	mu    sync.Mutex
	rings map[string]string      // name -> createTime
	keys  map[string]cipher.AEAD // cryptoKey name -> its key
}

func newKMSStore() *kmsStore {
	return &kmsStore{rings: map[string]string{}, keys: map[string]cipher.AEAD{}}
}

// kmsName is the request of one KMS call, for the request log (which logs GetName()).
type kmsName string

func (n kmsName) GetName() string { return string(n) }

// serveKMS answers the KMS routes; false when the request is not one of them.
func (a *restAPI) serveKMS(w http.ResponseWriter, r *http.Request) bool {
	path, ok := strings.CutPrefix(r.URL.Path, "/v1/")
	if !ok || !strings.Contains(path, "/keyRings") || r.Method != http.MethodPost {
		return false
	}
	verb := ""
	if i := strings.LastIndex(path, ":"); i > strings.LastIndex(path, "/") {
		path, verb = path[:i], path[i+1:]
	}
	q := r.URL.Query()
	var body map[string]string
	data, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if len(strings.TrimSpace(string(data))) > 0 {
		var raw map[string]any
		if err := json.Unmarshal(data, &raw); err != nil {
			writeError(w, status.Errorf(codes.InvalidArgument, "invalid JSON body: %v", err))
			return true
		}
		body = map[string]string{}
		for k, v := range raw {
			if s, ok := v.(string); ok {
				body[k] = s
			}
		}
	}
	k := a.kms
	var method, name string
	var run func() (any, error)
	switch {
	case verb == "" && strings.HasSuffix(path, "/keyRings") && kmsLocationRE.MatchString(strings.TrimSuffix(path, "/keyRings")):
		method, name = "CreateKeyRing", path+"/"+q.Get("keyRingId")
		run = func() (any, error) {
			if !kmsIDRE.MatchString(q.Get("keyRingId")) {
				return nil, status.Error(codes.InvalidArgument, "invalid keyRingId")
			}
			k.mu.Lock()
			defer k.mu.Unlock()
			if _, ok := k.rings[name]; ok {
				return nil, status.Errorf(codes.AlreadyExists, "KeyRing %s already exists.", name)
			}
			k.rings[name] = time.Now().UTC().Format(time.RFC3339Nano)
			return map[string]any{"name": name, "createTime": k.rings[name]}, nil
		}
	case verb == "" && strings.HasSuffix(path, "/cryptoKeys") && kmsRingRE.MatchString(strings.TrimSuffix(path, "/cryptoKeys")):
		ring := strings.TrimSuffix(path, "/cryptoKeys")
		method, name = "CreateCryptoKey", path+"/"+q.Get("cryptoKeyId")
		run = func() (any, error) {
			if !kmsIDRE.MatchString(q.Get("cryptoKeyId")) {
				return nil, status.Error(codes.InvalidArgument, "invalid cryptoKeyId")
			}
			if p := body["purpose"]; p != "" && p != "ENCRYPT_DECRYPT" {
				return nil, status.Error(codes.Unimplemented, "gcpsm-fake makes ENCRYPT_DECRYPT keys only")
			}
			k.mu.Lock()
			defer k.mu.Unlock()
			if _, ok := k.rings[ring]; !ok {
				return nil, status.Errorf(codes.NotFound, "KeyRing %s not found.", ring)
			}
			if _, ok := k.keys[name]; ok {
				return nil, status.Errorf(codes.AlreadyExists, "CryptoKey %s already exists.", name)
			}
			secret := make([]byte, 32)
			_, _ = rand.Read(secret)
			block, _ := aes.NewCipher(secret)
			aead, _ := cipher.NewGCM(block)
			k.keys[name] = aead
			return map[string]any{"name": name, "purpose": "ENCRYPT_DECRYPT", "primary": map[string]any{
				"name": name + "/cryptoKeyVersions/1", "state": "ENABLED", "algorithm": "GOOGLE_SYMMETRIC_ENCRYPTION",
			}}, nil
		}
	case (verb == "encrypt" || verb == "decrypt") && kmsKeyRE.MatchString(path):
		key := kmsKeyRE.FindStringSubmatch(path)[1]
		method, name = strings.ToUpper(verb[:1])+verb[1:], path
		run = func() (any, error) {
			k.mu.Lock()
			aead, ok := k.keys[key]
			k.mu.Unlock()
			if !ok {
				return nil, status.Errorf(codes.NotFound, "CryptoKey %s not found.", key)
			}
			aad, err := b64Field(body, "additionalAuthenticatedData")
			if err != nil {
				return nil, err
			}
			if verb == "encrypt" {
				plain, err := b64Field(body, "plaintext")
				if err != nil {
					return nil, err
				}
				nonce := make([]byte, aead.NonceSize())
				_, _ = rand.Read(nonce)
				ct := aead.Seal(nonce, nonce, plain, aad)
				return map[string]any{
					"name": key + "/cryptoKeyVersions/1", "ciphertext": b64(ct),
					"ciphertextCrc32c": crc(ct), "verifiedPlaintextCrc32c": true, "protectionLevel": "SOFTWARE",
				}, nil
			}
			ct, err := b64Field(body, "ciphertext")
			if err != nil {
				return nil, err
			}
			invalid := status.Error(codes.InvalidArgument, "Decryption failed: the ciphertext is invalid.")
			if len(ct) < aead.NonceSize() {
				return nil, invalid
			}
			plain, err := aead.Open(nil, ct[:aead.NonceSize()], ct[aead.NonceSize():], aad)
			if err != nil {
				return nil, invalid
			}
			return map[string]any{"plaintext": b64(plain), "plaintextCrc32c": crc(plain), "usedPrimary": true, "protectionLevel": "SOFTWARE"}, nil
		}
	default:
		return false
	}
	resp, err := a.log.call(method, r.Header.Get("Authorization"), kmsName(name), a.requireToken, run)
	if err != nil {
		writeError(w, err)
		return true
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	_ = json.NewEncoder(w).Encode(resp)
	return true
}

func b64Field(body map[string]string, field string) ([]byte, error) {
	v, err := b64dec(body[field])
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "%s is not base64", field)
	}
	return v, nil
}

func crc(b []byte) string {
	return strconv.FormatUint(uint64(crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli))), 10)
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// b64dec accepts standard or URL-safe base64, padded or not (protojson accepts both).
func b64dec(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	if strings.ContainsAny(s, "-_") {
		return base64.RawURLEncoding.DecodeString(s)
	}
	return base64.RawStdEncoding.DecodeString(s)
}
