package main

// The HTTP/JSON mapping of google.cloud.secretmanager.v1.SecretManagerService, as published in the service's
// google.api.http annotations (secretmanager/v1/service.proto) and used by REST clients such as the official
// Rust crate google-cloud-secretmanager-v1:
//
//	GET    /v1/{parent=projects/*[/locations/*]}/secrets?pageSize&pageToken&filter        ListSecrets
//	POST   /v1/{parent=projects/*[/locations/*]}/secrets?secretId  body: Secret           CreateSecret
//	GET    /v1/{name=projects/*[/locations/*]/secrets/*}                                   GetSecret
//	PATCH  /v1/{secret.name=...secrets/*}?updateMask  body: Secret                         UpdateSecret
//	DELETE /v1/{name=...secrets/*}?etag                                                    DeleteSecret
//	POST   /v1/{parent=...secrets/*}:addVersion  body: AddSecretVersionRequest             AddSecretVersion
//	GET    /v1/{parent=...secrets/*}/versions?pageSize&pageToken&filter                    ListSecretVersions
//	GET    /v1/{name=...secrets/*/versions/*}                                              GetSecretVersion
//	GET    /v1/{name=...secrets/*/versions/*}:access                                       AccessSecretVersion
//	POST   /v1/{name=...secrets/*/versions/*}:enable|:disable|:destroy  body: {etag}       Enable/Disable/DestroySecretVersion
//
// Bodies and answers are protojson (lowerCamelCase names, int64 as strings, bytes as base64); enums are numbers
// when the request asks for `$alt=json;enum-encoding=int`. Errors are Google's JSON error shape
// {"error":{"code":HTTP,"message":...,"status":"NOT_FOUND"}} with the HTTP status of the gRPC code. Each call is
// handled by the same methods, token check and request log as the gRPC transport.

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	smpb "cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	rpccode "google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

type restAPI struct {
	sm           *server
	kms          *kmsStore
	log          *requestLog
	requireToken string
}

// httpStatus maps a gRPC code to its HTTP status, as Google's HTTP/JSON transcoding does.
func httpStatus(c codes.Code) int {
	switch c {
	case codes.OK:
		return http.StatusOK
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
		return http.StatusBadRequest
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.NotFound:
		return http.StatusNotFound
	case codes.AlreadyExists, codes.Aborted:
		return http.StatusConflict
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.Canceled:
		return 499
	case codes.Unimplemented:
		return http.StatusNotImplemented
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

func writeError(w http.ResponseWriter, err error) {
	st := status.Convert(err)
	code := httpStatus(st.Code())
	body, _ := json.Marshal(map[string]any{"error": map[string]any{
		"code":    code,
		"message": st.Message(),
		"status":  rpccode.Code_name[int32(st.Code())],
	}})
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

// route is one matched REST call: the RPC name, its request message, and how to run it.
type route struct {
	method string
	req    proto.Message
	run    func() (proto.Message, error)
}

func (a *restAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if a.serveKMS(w, r) {
		return
	}
	rt, err := a.match(r)
	if err != nil {
		writeError(w, err)
		return
	}
	resp, err := a.log.call(rt.method, r.Header.Get("Authorization"), rt.req, a.requireToken, func() (any, error) {
		return rt.run()
	})
	if err != nil {
		writeError(w, err)
		return
	}
	// `$alt=json;enum-encoding=int` (the `;` may come unescaped, which url.ParseQuery drops, so look at the raw query).
	raw, _ := url.QueryUnescape(r.URL.RawQuery)
	opts := protojson.MarshalOptions{UseEnumNumbers: strings.Contains(raw, "enum-encoding=int")}
	body, err := opts.Marshal(resp.(proto.Message))
	if err != nil {
		writeError(w, status.Errorf(codes.Internal, "encoding the answer: %v", err))
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	_, _ = w.Write(body)
}

func readBody(r *http.Request, into proto.Message) error {
	data, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		return status.Errorf(codes.InvalidArgument, "reading the body: %v", err)
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil
	}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(data, into); err != nil {
		return status.Errorf(codes.InvalidArgument, "invalid JSON body: %v", err)
	}
	return nil
}

func pageSize(q string) (int32, error) {
	if q == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(q, 10, 32)
	if err != nil {
		return 0, status.Errorf(codes.InvalidArgument, "invalid pageSize %q", q)
	}
	return int32(n), nil
}

// match maps an HTTP request onto an RPC of the service.
func (a *restAPI) match(r *http.Request) (*route, error) {
	path, ok := strings.CutPrefix(r.URL.Path, "/v1/")
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no such path %q", r.URL.Path)
	}
	verb := ""
	if i := strings.LastIndex(path, ":"); i > strings.LastIndex(path, "/") {
		path, verb = path[:i], path[i+1:]
	}
	q := r.URL.Query()
	ctx := r.Context()
	isSecret := func(p string) bool { _, err := splitSecret(p); return err == nil }
	isVersion := func(p string) bool { _, _, err := splitVersion(p); return err == nil }
	unknown := status.Errorf(codes.NotFound, "no RPC for %s %s", r.Method, r.URL.Path)

	switch {
	case verb == "" && strings.HasSuffix(path, "/secrets") && isParent(strings.TrimSuffix(path, "/secrets")):
		parent := strings.TrimSuffix(path, "/secrets")
		switch r.Method {
		case http.MethodGet:
			size, err := pageSize(q.Get("pageSize"))
			if err != nil {
				return nil, err
			}
			req := &smpb.ListSecretsRequest{Parent: parent, PageSize: size, PageToken: q.Get("pageToken"), Filter: q.Get("filter")}
			return &route{"ListSecrets", req, func() (proto.Message, error) { return a.sm.ListSecrets(ctx, req) }}, nil
		case http.MethodPost:
			sec := &smpb.Secret{}
			if err := readBody(r, sec); err != nil {
				return nil, err
			}
			req := &smpb.CreateSecretRequest{Parent: parent, SecretId: q.Get("secretId"), Secret: sec}
			return &route{"CreateSecret", req, func() (proto.Message, error) { return a.sm.CreateSecret(ctx, req) }}, nil
		}
	case verb == "" && strings.HasSuffix(path, "/versions") && isSecret(strings.TrimSuffix(path, "/versions")) && r.Method == http.MethodGet:
		size, err := pageSize(q.Get("pageSize"))
		if err != nil {
			return nil, err
		}
		req := &smpb.ListSecretVersionsRequest{Parent: strings.TrimSuffix(path, "/versions"), PageSize: size, PageToken: q.Get("pageToken"), Filter: q.Get("filter")}
		return &route{"ListSecretVersions", req, func() (proto.Message, error) { return a.sm.ListSecretVersions(ctx, req) }}, nil
	case isSecret(path):
		switch {
		case verb == "" && r.Method == http.MethodGet:
			req := &smpb.GetSecretRequest{Name: path}
			return &route{"GetSecret", req, func() (proto.Message, error) { return a.sm.GetSecret(ctx, req) }}, nil
		case verb == "" && r.Method == http.MethodPatch:
			sec := &smpb.Secret{}
			if err := readBody(r, sec); err != nil {
				return nil, err
			}
			sec.Name = path
			req := &smpb.UpdateSecretRequest{Secret: sec}
			if m := q.Get("updateMask"); m != "" {
				req.UpdateMask = &fieldmaskpb.FieldMask{}
				for _, p := range strings.Split(m, ",") {
					// JSON field masks are lowerCamelCase; the server's switch uses proto names.
					req.UpdateMask.Paths = append(req.UpdateMask.Paths, snake(p))
				}
			}
			return &route{"UpdateSecret", req, func() (proto.Message, error) { return a.sm.UpdateSecret(ctx, req) }}, nil
		case verb == "" && r.Method == http.MethodDelete:
			req := &smpb.DeleteSecretRequest{Name: path, Etag: q.Get("etag")}
			return &route{"DeleteSecret", req, func() (proto.Message, error) { return a.sm.DeleteSecret(ctx, req) }}, nil
		case verb == "addVersion" && r.Method == http.MethodPost:
			req := &smpb.AddSecretVersionRequest{}
			if err := readBody(r, req); err != nil {
				return nil, err
			}
			req.Parent = path
			return &route{"AddSecretVersion", req, func() (proto.Message, error) { return a.sm.AddSecretVersion(ctx, req) }}, nil
		}
	case isVersion(path):
		switch {
		case verb == "" && r.Method == http.MethodGet:
			req := &smpb.GetSecretVersionRequest{Name: path}
			return &route{"GetSecretVersion", req, func() (proto.Message, error) { return a.sm.GetSecretVersion(ctx, req) }}, nil
		case verb == "access" && r.Method == http.MethodGet:
			req := &smpb.AccessSecretVersionRequest{Name: path}
			return &route{"AccessSecretVersion", req, func() (proto.Message, error) { return a.sm.AccessSecretVersion(ctx, req) }}, nil
		case verb == "enable" && r.Method == http.MethodPost:
			req := &smpb.EnableSecretVersionRequest{Name: path}
			return &route{"EnableSecretVersion", req, func() (proto.Message, error) { return a.sm.EnableSecretVersion(ctx, req) }}, nil
		case verb == "disable" && r.Method == http.MethodPost:
			req := &smpb.DisableSecretVersionRequest{Name: path}
			return &route{"DisableSecretVersion", req, func() (proto.Message, error) { return a.sm.DisableSecretVersion(ctx, req) }}, nil
		case verb == "destroy" && r.Method == http.MethodPost:
			req := &smpb.DestroySecretVersionRequest{Name: path}
			return &route{"DestroySecretVersion", req, func() (proto.Message, error) { return a.sm.DestroySecretVersion(ctx, req) }}, nil
		}
	}
	return nil, unknown
}

// snake turns a lowerCamelCase field path into the proto name (versionAliases -> version_aliases).
func snake(s string) string {
	var b strings.Builder
	for _, c := range s {
		if c >= 'A' && c <= 'Z' {
			b.WriteByte('_')
			c += 'a' - 'A'
		}
		b.WriteRune(c)
	}
	return b.String()
}
