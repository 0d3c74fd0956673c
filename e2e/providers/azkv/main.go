// Command azkv-fake serves the secrets part of the Azure Key Vault REST API (api-version 7.x) from memory over
// HTTPS, plus the two token endpoints a Key Vault client uses (Microsoft Entra ID client credentials and the
// managed-identity IMDS endpoint), for syncret's integration tests. It is syncret's own test double: Lowkey Vault's
// app jar is not obtainable here (see docs/providers/test-servers.md). Standard library only.
//
//	azkv-fake -addr 127.0.0.1:PORT -cert server.crt -key server.key [-imds-addr 127.0.0.1:PORT2]
//	          [-request-log FILE] [-require-issued-tokens]
//
// Key Vault (HTTPS, `?api-version=` required): PUT /secrets/{name}, GET /secrets/{name}[/{version}],
// PATCH /secrets/{name}/{version}, GET /secrets, GET /secrets/{name}/versions (paging: maxresults, nextLink),
// DELETE /secrets/{name} (soft delete), GET /deletedsecrets[/{name}], DELETE /deletedsecrets/{name} (purge),
// POST /deletedsecrets/{name}/recover; keys and certificates as ESO's key/ and cert/ read them (objects.go:
// ImportKey, GetKey, ImportCertificate, GetCertificate). Requests without a bearer token get 401 with the usual
// `WWW-Authenticate: Bearer authorization="https://HOST/TENANT", resource="https://vault.azure.net"` challenge.
// Tokens: POST /{tenant}/oauth2/v2.0/token (and /oauth2/token) grants client_credentials requests — with a
// client_secret or a client_assertion (certificate credential or federated workload identity token) — and
// GET /metadata/identity/oauth2/token on -imds-addr (needs `Metadata: true`) grants managed-identity tokens. While
// no application is registered every request is granted; once tests register applications, issuers and managed
// identities through PUT /fake-admin/... (directory.go), requests are validated as Entra ID does (secret, certificate
// JWT, federated credential issuer/subject/audience and signature) and refused with Entra ID's error codes.
// With -require-issued-tokens, Key Vault accepts only tokens this process issued. Every request is appended to FILE
// as one JSON line {"op","method","path","query","status","authorization","form"}.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

type attributes struct {
	Enabled         *bool  `json:"enabled,omitempty"`
	NotBefore       *int64 `json:"nbf,omitempty"`
	Expires         *int64 `json:"exp,omitempty"`
	Created         int64  `json:"created,omitempty"`
	Updated         int64  `json:"updated,omitempty"`
	RecoveryLevel   string `json:"recoveryLevel,omitempty"`
	RecoverableDays int    `json:"recoverableDays,omitempty"`
}

type version struct {
	id          string
	value       string
	contentType string
	tags        map[string]string
	attrs       attributes
}

type secretEntry struct {
	versions    []*version // oldest first; the last is current
	deletedDate int64
}

type vault struct {
	mu      sync.Mutex
	base    string // https://127.0.0.1:PORT
	secrets map[string]*secretEntry
	deleted map[string]*secretEntry
	tokens  map[string]bool
	strict  bool
	dir     *directory
	objs    *objectStore
	logMu   sync.Mutex
	logFile *os.File
}

var nameRE = regexp.MustCompile(`^[0-9a-zA-Z-]{1,127}$`)

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func kvError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

func (v *vault) bundle(name string, ver *version, withValue bool) map[string]any {
	b := map[string]any{
		"id":         fmt.Sprintf("%s/secrets/%s/%s", v.base, name, ver.id),
		"attributes": ver.attrs,
	}
	if withValue {
		b["value"] = ver.value
	}
	if ver.contentType != "" {
		b["contentType"] = ver.contentType
	}
	if len(ver.tags) > 0 {
		b["tags"] = ver.tags
	}
	return b
}

func (v *vault) item(id string, ver *version) map[string]any {
	it := map[string]any{"id": id, "attributes": ver.attrs}
	if ver.contentType != "" {
		it["contentType"] = ver.contentType
	}
	if len(ver.tags) > 0 {
		it["tags"] = ver.tags
	}
	return it
}

// paged writes {"value": items[skip:skip+max], "nextLink": ...}.
func (v *vault) paged(w http.ResponseWriter, r *http.Request, items []map[string]any) {
	q := r.URL.Query()
	skip, _ := strconv.Atoi(q.Get("$skiptoken"))
	max := 25
	if m, err := strconv.Atoi(q.Get("maxresults")); err == nil && m > 0 && m <= 25 {
		max = m
	}
	if skip < 0 || skip > len(items) {
		skip = len(items)
	}
	end := skip + max
	var next any
	if end < len(items) {
		nq := url.Values{}
		nq.Set("api-version", q.Get("api-version"))
		nq.Set("maxresults", strconv.Itoa(max))
		nq.Set("$skiptoken", strconv.Itoa(end))
		next = v.base + r.URL.Path + "?" + nq.Encode()
	} else {
		end = len(items)
	}
	writeJSON(w, http.StatusOK, map[string]any{"value": items[skip:end], "nextLink": next})
}

type secretBody struct {
	Value       *string           `json:"value"`
	ContentType *string           `json:"contentType"`
	Tags        map[string]string `json:"tags"`
	Attributes  *attributes       `json:"attributes"`
}

// keyVault handles /secrets... and /deletedsecrets...; it returns the operation name for the request log.
func (v *vault) keyVault(w http.ResponseWriter, r *http.Request) string {
	if r.URL.Query().Get("api-version") == "" {
		kvError(w, http.StatusBadRequest, "BadParameter", "The 'api-version' query parameter is required.")
		return "MissingApiVersion"
	}
	auth := r.Header.Get("Authorization")
	token, isBearer := strings.CutPrefix(auth, "Bearer ")
	if !isBearer || token == "" {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(
			`Bearer authorization="%s/fake-tenant", resource="https://vault.azure.net"`, v.base))
		kvError(w, http.StatusUnauthorized, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.")
		return "Challenge"
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.strict && !v.tokens[token] {
		kvError(w, http.StatusUnauthorized, "Unauthorized", "AKV10032: Invalid issuer (the token was not issued by this fake).")
		return "InvalidToken"
	}

	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	now := time.Now().Unix()
	notFound := func(name string) {
		kvError(w, http.StatusNotFound, "SecretNotFound",
			fmt.Sprintf("A secret with (name/id) %s was not found in this key vault.", name))
	}
	decode := func() (*secretBody, bool) {
		var b secretBody
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
			kvError(w, http.StatusBadRequest, "BadParameter", "invalid JSON body: "+err.Error())
			return nil, false
		}
		return &b, true
	}

	switch {
	case parts[0] == "secrets" && len(parts) == 1 && r.Method == http.MethodGet:
		names := make([]string, 0, len(v.secrets))
		for n := range v.secrets {
			names = append(names, n)
		}
		sort.Strings(names)
		items := []map[string]any{}
		for _, n := range names {
			e := v.secrets[n]
			items = append(items, v.item(fmt.Sprintf("%s/secrets/%s", v.base, n), e.versions[len(e.versions)-1]))
		}
		v.paged(w, r, items)
		return "GetSecrets"

	case parts[0] == "secrets" && len(parts) == 2 && r.Method == http.MethodPut:
		name := parts[1]
		if !nameRE.MatchString(name) {
			kvError(w, http.StatusBadRequest, "BadParameter", "The request URI contains an invalid name: "+name)
			return "SetSecret"
		}
		if _, gone := v.deleted[name]; gone {
			kvError(w, http.StatusConflict, "Conflict",
				fmt.Sprintf("Secret %s is currently in a deleted but recoverable state, and its name cannot be reused.", name))
			return "SetSecret"
		}
		b, ok := decode()
		if !ok {
			return "SetSecret"
		}
		if b.Value == nil {
			kvError(w, http.StatusBadRequest, "BadParameter", "Property 'value' is required.")
			return "SetSecret"
		}
		enabled := true
		attrs := attributes{Enabled: &enabled}
		if b.Attributes != nil {
			attrs = *b.Attributes
			if attrs.Enabled == nil {
				attrs.Enabled = &enabled
			}
		}
		attrs.Created, attrs.Updated = now, now
		attrs.RecoveryLevel, attrs.RecoverableDays = "Recoverable+Purgeable", 90
		ver := &version{id: newID(), value: *b.Value, tags: b.Tags, attrs: attrs}
		if b.ContentType != nil {
			ver.contentType = *b.ContentType
		}
		e := v.secrets[name]
		if e == nil {
			e = &secretEntry{}
			v.secrets[name] = e
		}
		e.versions = append(e.versions, ver)
		writeJSON(w, http.StatusOK, v.bundle(name, ver, true))
		return "SetSecret"

	case parts[0] == "secrets" && len(parts) == 3 && parts[2] == "versions" && r.Method == http.MethodGet:
		e := v.secrets[parts[1]]
		if e == nil {
			notFound(parts[1])
			return "GetSecretVersions"
		}
		items := []map[string]any{}
		for _, ver := range e.versions {
			items = append(items, v.item(fmt.Sprintf("%s/secrets/%s/%s", v.base, parts[1], ver.id), ver))
		}
		v.paged(w, r, items)
		return "GetSecretVersions"

	case parts[0] == "secrets" && (len(parts) == 2 || len(parts) == 3) && (r.Method == http.MethodGet || r.Method == http.MethodPatch):
		op := "GetSecret"
		if r.Method == http.MethodPatch {
			op = "UpdateSecret"
		}
		name := parts[1]
		e := v.secrets[name]
		if e == nil {
			notFound(name)
			return op
		}
		ver := e.versions[len(e.versions)-1]
		if len(parts) == 3 && parts[2] != "" {
			ver = nil
			for _, x := range e.versions {
				if x.id == parts[2] {
					ver = x
				}
			}
			if ver == nil {
				notFound(name + "/" + parts[2])
				return op
			}
		}
		if r.Method == http.MethodGet {
			if ver.attrs.Enabled != nil && !*ver.attrs.Enabled {
				kvError(w, http.StatusForbidden, "Forbidden", "Operation get is not allowed on a disabled secret.")
				return op
			}
			writeJSON(w, http.StatusOK, v.bundle(name, ver, true))
			return op
		}
		b, ok := decode()
		if !ok {
			return op
		}
		if b.ContentType != nil {
			ver.contentType = *b.ContentType
		}
		if b.Tags != nil {
			ver.tags = b.Tags
		}
		if b.Attributes != nil {
			if b.Attributes.Enabled != nil {
				ver.attrs.Enabled = b.Attributes.Enabled
			}
			if b.Attributes.NotBefore != nil {
				ver.attrs.NotBefore = b.Attributes.NotBefore
			}
			if b.Attributes.Expires != nil {
				ver.attrs.Expires = b.Attributes.Expires
			}
		}
		ver.attrs.Updated = now
		writeJSON(w, http.StatusOK, v.bundle(name, ver, false))
		return op

	case parts[0] == "secrets" && len(parts) == 2 && r.Method == http.MethodDelete:
		name := parts[1]
		e := v.secrets[name]
		if e == nil {
			notFound(name)
			return "DeleteSecret"
		}
		delete(v.secrets, name)
		e.deletedDate = now
		v.deleted[name] = e
		writeJSON(w, http.StatusOK, v.deletedBundle(name, e))
		return "DeleteSecret"

	case parts[0] == "deletedsecrets" && len(parts) == 1 && r.Method == http.MethodGet:
		names := make([]string, 0, len(v.deleted))
		for n := range v.deleted {
			names = append(names, n)
		}
		sort.Strings(names)
		items := []map[string]any{}
		for _, n := range names {
			items = append(items, v.deletedBundle(n, v.deleted[n]))
		}
		v.paged(w, r, items)
		return "GetDeletedSecrets"

	case parts[0] == "deletedsecrets" && len(parts) >= 2:
		name := parts[1]
		e := v.deleted[name]
		op := map[string]string{http.MethodGet: "GetDeletedSecret", http.MethodDelete: "PurgeDeletedSecret", http.MethodPost: "RecoverDeletedSecret"}[r.Method]
		if e == nil {
			kvError(w, http.StatusNotFound, "SecretNotFound", fmt.Sprintf("Deleted Secret not found: %s", name))
			return op
		}
		switch {
		case r.Method == http.MethodGet && len(parts) == 2:
			writeJSON(w, http.StatusOK, v.deletedBundle(name, e))
		case r.Method == http.MethodDelete && len(parts) == 2:
			delete(v.deleted, name)
			w.WriteHeader(http.StatusNoContent)
		case r.Method == http.MethodPost && len(parts) == 3 && parts[2] == "recover":
			delete(v.deleted, name)
			e.deletedDate = 0
			v.secrets[name] = e
			writeJSON(w, http.StatusOK, v.bundle(name, e.versions[len(e.versions)-1], false))
		default:
			kvError(w, http.StatusMethodNotAllowed, "BadParameter", "unsupported")
		}
		return op
	}
	if op := v.objects(w, r, parts); op != "" {
		return op
	}
	kvError(w, http.StatusNotImplemented, "NotImplemented", fmt.Sprintf("azkv-fake does not serve %s %s", r.Method, r.URL.Path))
	return "NotImplemented"
}

func (v *vault) deletedBundle(name string, e *secretEntry) map[string]any {
	b := v.bundle(name, e.versions[len(e.versions)-1], false)
	b["recoveryId"] = fmt.Sprintf("%s/deletedsecrets/%s", v.base, name)
	b["deletedDate"] = e.deletedDate
	b["scheduledPurgeDate"] = e.deletedDate + 90*24*3600
	return b
}

func (v *vault) issue(w http.ResponseWriter, resource string, v2 bool) {
	tok := "azkv-fake-" + newID()
	v.mu.Lock()
	v.tokens[tok] = true
	v.mu.Unlock()
	exp := time.Now().Add(time.Hour).Unix()
	body := map[string]any{"token_type": "Bearer", "access_token": tok, "expires_in": 3600}
	if !v2 {
		// v1 and IMDS shape: strings, plus resource and expires_on.
		body = map[string]any{"token_type": "Bearer", "access_token": tok, "expires_in": "3600",
			"expires_on": strconv.FormatInt(exp, 10), "resource": resource}
	}
	writeJSON(w, http.StatusOK, body)
}

// entraToken handles POST /{tenant}/oauth2/v2.0/token and /{tenant}/oauth2/token.
func (v *vault) entraToken(w http.ResponseWriter, r *http.Request) (string, url.Values) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return "Token", nil
	}
	form := r.PostForm
	if form.Get("grant_type") != "client_credentials" || form.Get("client_id") == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type",
			"error_description": "azkv-fake grants client_credentials with a client_id only"})
		return "Token", form
	}
	op := "TokenClientSecret"
	if form.Get("client_assertion") != "" {
		op = "TokenClientAssertion"
	}
	tenant := strings.Split(strings.Trim(r.URL.Path, "/"), "/")[0]
	if e := v.dir.checkTokenRequest(r, v.base+r.URL.Path, tenant); e != nil {
		e.write(w)
		return op, form
	}
	v.issue(w, form.Get("resource"), strings.Contains(r.URL.Path, "/v2.0/"))
	return op, form
}

// imds handles GET /metadata/identity/oauth2/token.
func (v *vault) imds(w http.ResponseWriter, r *http.Request) string {
	if r.Header.Get("Metadata") != "true" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "Required metadata header not specified"})
		return "TokenManagedIdentity"
	}
	if msg := v.dir.checkManagedIdentity(r); msg != "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": msg})
		return "TokenManagedIdentity"
	}
	v.issue(w, r.URL.Query().Get("resource"), false)
	return "TokenManagedIdentity"
}

type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(s int) { r.status = s; r.ResponseWriter.WriteHeader(s) }

func (v *vault) handler(imdsOnly bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		var op string
		var form url.Values
		switch {
		case imdsOnly && r.URL.Path == "/metadata/identity/oauth2/token":
			op = v.imds(rec, r)
			form = r.URL.Query()
		case imdsOnly:
			http.NotFound(rec, r)
			op = "NotFound"
		case !imdsOnly && strings.HasPrefix(r.URL.Path, "/fake-admin/"):
			op = v.dir.admin(rec, r)
		case strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token") || strings.HasSuffix(r.URL.Path, "/oauth2/token"):
			op, form = v.entraToken(rec, r)
		default:
			op = v.keyVault(rec, r)
		}
		if v.logFile != nil {
			entry := map[string]any{"op": op, "method": r.Method, "path": r.URL.Path, "query": r.URL.RawQuery,
				"status": rec.status, "authorization": r.Header.Get("Authorization")}
			if form != nil {
				f := map[string]string{}
				for k := range form {
					f[k] = form.Get(k)
				}
				delete(f, "client_secret") // presence is what tests check, via op
				entry["form"] = f
			}
			line, _ := json.Marshal(entry)
			v.logMu.Lock()
			_, _ = v.logFile.Write(append(line, '\n'))
			v.logMu.Unlock()
		}
	})
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "HTTPS listen address (Key Vault and Entra ID token endpoint)")
	imdsAddr := flag.String("imds-addr", "", "plain-HTTP listen address of the managed-identity (IMDS) endpoint")
	cert := flag.String("cert", "", "server certificate (PEM)")
	key := flag.String("key", "", "server key (PEM)")
	logPath := flag.String("request-log", "", "append one JSON line per request to this file")
	strict := flag.Bool("require-issued-tokens", false, "accept only bearer tokens this process issued")
	flag.Parse()
	if *cert == "" || *key == "" {
		log.Fatal("-cert and -key are required (Key Vault clients insist on HTTPS)")
	}
	v := &vault{secrets: map[string]*secretEntry{}, deleted: map[string]*secretEntry{}, tokens: map[string]bool{}, strict: *strict, dir: newDirectory(), objs: newObjectStore()}
	if *logPath != "" {
		f, err := os.OpenFile(*logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			log.Fatalf("request log: %v", err)
		}
		v.logFile = f
	}
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("listen: %v", err)
	}
	v.base = "https://" + lis.Addr().String()
	srv := &http.Server{Handler: v.handler(false), ReadHeaderTimeout: 10 * time.Second}
	var imdsSrv *http.Server
	if *imdsAddr != "" {
		il, err := net.Listen("tcp", *imdsAddr)
		if err != nil {
			log.Fatalf("listen imds: %v", err)
		}
		imdsSrv = &http.Server{Handler: v.handler(true), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = imdsSrv.Serve(il) }()
		log.Printf("azkv-fake managed-identity endpoint on http://%s/metadata/identity/oauth2/token", il.Addr())
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sigs
		_ = srv.Close()
		if imdsSrv != nil {
			_ = imdsSrv.Close()
		}
	}()
	log.Printf("azkv-fake serving Key Vault secrets (api-version 7.x) on %s", v.base)
	if err := srv.ServeTLS(lis, *cert, *key); err != nil && err != http.ErrServerClosed {
		log.Fatalf("serve: %v", err)
	}
}
