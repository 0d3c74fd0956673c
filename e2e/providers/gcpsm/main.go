// Command gcpsm-fake serves the google.cloud.secretmanager.v1.SecretManagerService gRPC API from memory, on
// plaintext gRPC, for syncret's integration tests. It is syncret's own test double (the upstream emulators are
// not obtainable here; see docs/providers/test-servers.md), built on the official generated protos.
//
//	gcpsm-fake -addr 127.0.0.1:PORT [-request-log FILE] [-require-token TOKEN]
//
// The same port also serves the service's HTTP/JSON mapping (the google.api.http rules of the published API, as
// the REST clients such as google-cloud-secretmanager-v1 for Rust use it) over HTTP/1.1: see rest.go and mux.go.
//
// Names may be global (projects/P/secrets/S) or regional (projects/P/locations/L/secrets/S).
//
// Served: CreateSecret, GetSecret, ListSecrets (filter: `name:SUBSTR`, `labels.KEY=VALUE`, `labels.KEY:*`,
// space-separated terms ANDed; paging), UpdateSecret (labels, annotations, version_aliases), DeleteSecret (etag),
// AddSecretVersion (payload CRC32C checked), GetSecretVersion, AccessSecretVersion (`latest`, numbers, aliases),
// ListSecretVersions (filter `state:STATE`), EnableSecretVersion, DisableSecretVersion, DestroySecretVersion.
// Cloud KMS symmetric keys (CreateKeyRing, CreateCryptoKey, Encrypt, Decrypt) on the REST side only: kms.go.
// Everything else answers UNIMPLEMENTED. Every call is appended to FILE as one JSON line {"method","name","authorization","code"}.
// With -require-token, calls without `authorization: Bearer TOKEN` fail with UNAUTHENTICATED.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"hash/crc32"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"

	smpb "cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

type secret struct {
	meta     *smpb.Secret
	versions []*version // index i holds version i+1
	etagSeq  int
}

type version struct {
	meta *smpb.SecretVersion
	data []byte
}

type server struct {
	smpb.UnimplementedSecretManagerServiceServer
	mu      sync.Mutex
	secrets map[string]*secret // by full name projects/P/secrets/S
}

func newServer() *server { return &server{secrets: map[string]*secret{}} }

func (s *secret) touch() {
	s.etagSeq++
	s.meta.Etag = fmt.Sprintf("\"%d\"", s.etagSeq)
}

// isParent reports whether p is a parent of secrets: projects/P or projects/P/locations/L (regional secrets).
func isParent(p string) bool {
	parts := strings.Split(p, "/")
	switch len(parts) {
	case 2:
		return parts[0] == "projects" && parts[1] != ""
	case 4:
		return parts[0] == "projects" && parts[1] != "" && parts[2] == "locations" && parts[3] != ""
	}
	return false
}

// splitSecret checks projects/P/secrets/S or projects/P/locations/L/secrets/S.
func splitSecret(name string) (string, error) {
	i := strings.LastIndex(name, "/secrets/")
	if i < 0 || !isParent(name[:i]) || name[i+len("/secrets/"):] == "" || strings.Contains(name[i+len("/secrets/"):], "/") {
		return "", status.Errorf(codes.InvalidArgument, "invalid secret name %q", name)
	}
	return name, nil
}

// splitVersion parses SECRET/versions/V.
func splitVersion(name string) (string, string, error) {
	i := strings.LastIndex(name, "/versions/")
	if i < 0 || name[i+len("/versions/"):] == "" || strings.Contains(name[i+len("/versions/"):], "/") {
		return "", "", status.Errorf(codes.InvalidArgument, "invalid secret version name %q", name)
	}
	sec, err := splitSecret(name[:i])
	return sec, name[i+len("/versions/"):], err
}

func (s *server) getSecret(name string) (*secret, error) {
	sec, ok := s.secrets[name]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "Secret [%s] not found or has no versions.", name)
	}
	return sec, nil
}

func (s *server) getVersion(name string) (*secret, *version, error) {
	secName, v, err := splitVersion(name)
	if err != nil {
		return nil, nil, err
	}
	sec, err := s.getSecret(secName)
	if err != nil {
		return nil, nil, err
	}
	var n int64
	switch {
	case v == "latest":
		// As the real service: the most recently created version, whatever its state.
		n = int64(len(sec.versions))
	default:
		if num, perr := strconv.ParseInt(v, 10, 64); perr == nil {
			n = num
		} else if alias, ok := sec.meta.VersionAliases[v]; ok {
			n = alias
		} else {
			return nil, nil, status.Errorf(codes.InvalidArgument, "invalid version %q", v)
		}
	}
	if n < 1 || n > int64(len(sec.versions)) {
		return nil, nil, status.Errorf(codes.NotFound, "Secret Version [%s] not found.", name)
	}
	return sec, sec.versions[n-1], nil
}

func (s *server) CreateSecret(_ context.Context, r *smpb.CreateSecretRequest) (*smpb.Secret, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !isParent(r.Parent) || r.SecretId == "" || strings.Contains(r.SecretId, "/") {
		return nil, status.Errorf(codes.InvalidArgument, "invalid parent %q or secret_id %q", r.Parent, r.SecretId)
	}
	name := r.Parent + "/secrets/" + r.SecretId
	if _, ok := s.secrets[name]; ok {
		return nil, status.Errorf(codes.AlreadyExists, "Secret [%s] already exists.", name)
	}
	meta := proto.Clone(r.GetSecret()).(*smpb.Secret)
	if r.GetSecret() == nil {
		meta = &smpb.Secret{}
	}
	meta.Name = name
	meta.CreateTime = timestamppb.Now()
	if meta.Replication == nil {
		meta.Replication = &smpb.Replication{Replication: &smpb.Replication_Automatic_{Automatic: &smpb.Replication_Automatic{}}}
	}
	sec := &secret{meta: meta}
	sec.touch()
	s.secrets[name] = sec
	return proto.Clone(meta).(*smpb.Secret), nil
}

func (s *server) GetSecret(_ context.Context, r *smpb.GetSecretRequest) (*smpb.Secret, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := splitSecret(r.Name); err != nil {
		return nil, err
	}
	sec, err := s.getSecret(r.Name)
	if err != nil {
		return nil, err
	}
	return proto.Clone(sec.meta).(*smpb.Secret), nil
}

// matches implements the subset of the List filter syntax syncret uses.
func matches(m *smpb.Secret, filter string) (bool, error) {
	short := m.Name[strings.LastIndex(m.Name, "/")+1:]
	for _, term := range strings.Fields(filter) {
		switch {
		case term == "AND":
			continue
		case strings.HasPrefix(term, "name:"):
			if !strings.Contains(short, strings.Trim(strings.TrimPrefix(term, "name:"), "\"")) {
				return false, nil
			}
		case strings.HasPrefix(term, "labels."):
			kv := strings.TrimPrefix(term, "labels.")
			if k, v, ok := strings.Cut(kv, "="); ok {
				if got, has := m.Labels[k]; !has || got != strings.Trim(v, "\"") {
					return false, nil
				}
			} else if k, v, ok := strings.Cut(kv, ":"); ok {
				got, has := m.Labels[k]
				v = strings.Trim(v, "\"")
				if !has || (v != "*" && !strings.Contains(got, v)) {
					return false, nil
				}
			} else {
				return false, status.Errorf(codes.InvalidArgument, "unsupported filter term %q", term)
			}
		default:
			return false, status.Errorf(codes.InvalidArgument, "unsupported filter term %q (this fake knows name:, labels.K=V, labels.K:V)", term)
		}
	}
	return true, nil
}

func page(total int, size int32, token string) (int, int, string, error) {
	start := 0
	if token != "" {
		n, err := strconv.Atoi(token)
		if err != nil || n < 0 || n > total {
			return 0, 0, "", status.Errorf(codes.InvalidArgument, "invalid page token %q", token)
		}
		start = n
	}
	if size <= 0 || size > 25000 {
		size = 25000
	}
	end := start + int(size)
	next := ""
	if end < total {
		next = strconv.Itoa(end)
	} else {
		end = total
	}
	return start, end, next, nil
}

func (s *server) ListSecrets(_ context.Context, r *smpb.ListSecretsRequest) (*smpb.ListSecretsResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var all []*smpb.Secret
	for name, sec := range s.secrets {
		if !strings.HasPrefix(name, r.Parent+"/secrets/") {
			continue
		}
		ok, err := matches(sec.meta, r.Filter)
		if err != nil {
			return nil, err
		}
		if ok {
			all = append(all, sec.meta)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	start, end, next, err := page(len(all), r.PageSize, r.PageToken)
	if err != nil {
		return nil, err
	}
	resp := &smpb.ListSecretsResponse{NextPageToken: next, TotalSize: int32(len(all))}
	for _, m := range all[start:end] {
		resp.Secrets = append(resp.Secrets, proto.Clone(m).(*smpb.Secret))
	}
	return resp, nil
}

func (s *server) UpdateSecret(_ context.Context, r *smpb.UpdateSecretRequest) (*smpb.Secret, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, err := s.getSecret(r.GetSecret().GetName())
	if err != nil {
		return nil, err
	}
	if r.GetSecret().GetEtag() != "" && r.GetSecret().GetEtag() != sec.meta.Etag {
		return nil, status.Errorf(codes.Aborted, "etag mismatch")
	}
	if r.UpdateMask == nil || len(r.UpdateMask.Paths) == 0 {
		return nil, status.Error(codes.InvalidArgument, "update_mask is required")
	}
	for _, p := range r.UpdateMask.Paths {
		switch p {
		case "labels":
			sec.meta.Labels = r.Secret.Labels
		case "annotations":
			sec.meta.Annotations = r.Secret.Annotations
		case "version_aliases":
			sec.meta.VersionAliases = r.Secret.VersionAliases
		default:
			return nil, status.Errorf(codes.InvalidArgument, "this fake cannot update %q", p)
		}
	}
	sec.touch()
	return proto.Clone(sec.meta).(*smpb.Secret), nil
}

func (s *server) DeleteSecret(_ context.Context, r *smpb.DeleteSecretRequest) (*emptypb.Empty, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, err := s.getSecret(r.Name)
	if err != nil {
		return nil, err
	}
	if r.Etag != "" && r.Etag != sec.meta.Etag {
		return nil, status.Errorf(codes.Aborted, "etag mismatch")
	}
	delete(s.secrets, r.Name)
	return &emptypb.Empty{}, nil
}

func (s *server) AddSecretVersion(_ context.Context, r *smpb.AddSecretVersionRequest) (*smpb.SecretVersion, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, err := s.getSecret(r.Parent)
	if err != nil {
		return nil, err
	}
	data := r.GetPayload().GetData()
	if r.GetPayload().DataCrc32C != nil {
		if int64(crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli))) != r.GetPayload().GetDataCrc32C() {
			return nil, status.Error(codes.InvalidArgument, "data_crc32c does not match the payload")
		}
	}
	n := len(sec.versions) + 1
	meta := &smpb.SecretVersion{
		Name:                           fmt.Sprintf("%s/versions/%d", sec.meta.Name, n),
		CreateTime:                     timestamppb.Now(),
		State:                          smpb.SecretVersion_ENABLED,
		Etag:                           "\"1\"",
		ClientSpecifiedPayloadChecksum: r.GetPayload().DataCrc32C != nil,
	}
	sec.versions = append(sec.versions, &version{meta: meta, data: append([]byte(nil), data...)})
	return proto.Clone(meta).(*smpb.SecretVersion), nil
}

func (s *server) GetSecretVersion(_ context.Context, r *smpb.GetSecretVersionRequest) (*smpb.SecretVersion, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, v, err := s.getVersion(r.Name)
	if err != nil {
		return nil, err
	}
	return proto.Clone(v.meta).(*smpb.SecretVersion), nil
}

func (s *server) AccessSecretVersion(_ context.Context, r *smpb.AccessSecretVersionRequest) (*smpb.AccessSecretVersionResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, v, err := s.getVersion(r.Name)
	if err != nil {
		return nil, err
	}
	if v.meta.State != smpb.SecretVersion_ENABLED {
		return nil, status.Errorf(codes.FailedPrecondition, "Secret Version [%s] is in %s state.", v.meta.Name, v.meta.State)
	}
	crc := int64(crc32.Checksum(v.data, crc32.MakeTable(crc32.Castagnoli)))
	return &smpb.AccessSecretVersionResponse{
		Name:    v.meta.Name,
		Payload: &smpb.SecretPayload{Data: append([]byte(nil), v.data...), DataCrc32C: &crc},
	}, nil
}

func (s *server) ListSecretVersions(_ context.Context, r *smpb.ListSecretVersionsRequest) (*smpb.ListSecretVersionsResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, err := s.getSecret(r.Parent)
	if err != nil {
		return nil, err
	}
	// Filter terms: only `state:STATE` (what ESO and syncret send).
	want := ""
	for _, term := range strings.Fields(r.Filter) {
		st, ok := strings.CutPrefix(term, "state:")
		if _, known := smpb.SecretVersion_State_value[st]; !ok || !known {
			return nil, status.Errorf(codes.InvalidArgument, "unsupported filter term %q (this fake knows state:STATE)", term)
		}
		want = st
	}
	// Newest first, as the real service.
	var all []*smpb.SecretVersion
	for i := len(sec.versions) - 1; i >= 0; i-- {
		if want == "" || sec.versions[i].meta.State.String() == want {
			all = append(all, sec.versions[i].meta)
		}
	}
	start, end, next, err := page(len(all), r.PageSize, r.PageToken)
	if err != nil {
		return nil, err
	}
	resp := &smpb.ListSecretVersionsResponse{NextPageToken: next, TotalSize: int32(len(all))}
	for _, m := range all[start:end] {
		resp.Versions = append(resp.Versions, proto.Clone(m).(*smpb.SecretVersion))
	}
	return resp, nil
}

func (s *server) setState(name string, state smpb.SecretVersion_State) (*smpb.SecretVersion, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, v, err := s.getVersion(name)
	if err != nil {
		return nil, err
	}
	if v.meta.State == smpb.SecretVersion_DESTROYED {
		return nil, status.Errorf(codes.FailedPrecondition, "Secret Version [%s] is destroyed.", v.meta.Name)
	}
	v.meta.State = state
	if state == smpb.SecretVersion_DESTROYED {
		v.data = nil
		v.meta.DestroyTime = timestamppb.Now()
	}
	return proto.Clone(v.meta).(*smpb.SecretVersion), nil
}

func (s *server) EnableSecretVersion(_ context.Context, r *smpb.EnableSecretVersionRequest) (*smpb.SecretVersion, error) {
	return s.setState(r.Name, smpb.SecretVersion_ENABLED)
}

func (s *server) DisableSecretVersion(_ context.Context, r *smpb.DisableSecretVersionRequest) (*smpb.SecretVersion, error) {
	return s.setState(r.Name, smpb.SecretVersion_DISABLED)
}

func (s *server) DestroySecretVersion(_ context.Context, r *smpb.DestroySecretVersionRequest) (*smpb.SecretVersion, error) {
	return s.setState(r.Name, smpb.SecretVersion_DESTROYED)
}

// requestLog appends one JSON line per call.
type requestLog struct {
	mu sync.Mutex
	f  *os.File
}

type named interface{ GetName() string }
type parented interface{ GetParent() string }

// call runs one RPC for either transport: checks the bearer token (with -require-token) and logs the call.
func (l *requestLog) call(method, authz string, req any, requireToken string, handler func() (any, error)) (any, error) {
	var resp any
	var err error
	if requireToken != "" && authz != "Bearer "+requireToken {
		err = status.Error(codes.Unauthenticated, "missing or wrong bearer token")
	} else {
		resp, err = handler()
	}
	name := ""
	switch r := req.(type) {
	case named:
		name = r.GetName()
	case parented:
		name = r.GetParent()
	}
	if r, ok := req.(*smpb.UpdateSecretRequest); ok {
		name = r.GetSecret().GetName()
	}
	if l.f != nil {
		line, _ := json.Marshal(map[string]string{
			"method": method, "name": name, "authorization": authz, "code": status.Code(err).String(),
		})
		l.mu.Lock()
		_, _ = l.f.Write(append(line, '\n'))
		l.mu.Unlock()
	}
	return resp, err
}

func (l *requestLog) interceptor(requireToken string) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if strings.HasPrefix(info.FullMethod, "/grpc.health.") {
			return handler(ctx, req)
		}
		method := info.FullMethod[strings.LastIndex(info.FullMethod, "/")+1:]
		authz := ""
		if md, ok := metadata.FromIncomingContext(ctx); ok {
			if v := md.Get("authorization"); len(v) > 0 {
				authz = v[0]
			}
		}
		return l.call(method, authz, req, requireToken, func() (any, error) { return handler(ctx, req) })
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (loopback)")
	logPath := flag.String("request-log", "", "append one JSON line per call to this file")
	requireToken := flag.String("require-token", "", "if set, calls must carry `authorization: Bearer TOKEN`")
	flag.Parse()

	reqLog := &requestLog{}
	if *logPath != "" {
		f, err := os.OpenFile(*logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			log.Fatalf("request log: %v", err)
		}
		reqLog.f = f
	}
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("listen: %v", err)
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(reqLog.interceptor(*requireToken)))
	sm := newServer()
	smpb.RegisterSecretManagerServiceServer(srv, sm)
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	// One port, two transports (mux.go): gRPC over h2c, and the HTTP/JSON (REST) mapping over HTTP/1.1 (rest.go).
	grpcL, restL := newChanListener(lis.Addr()), newChanListener(lis.Addr())
	go demux(lis, grpcL, restL)
	rest := &http.Server{Handler: &restAPI{sm: sm, kms: newKMSStore(), log: reqLog, requireToken: *requireToken}}
	go func() { _ = rest.Serve(restL) }()
	go func() { <-sigs; _ = rest.Close(); srv.Stop(); _ = lis.Close() }()
	log.Printf("gcpsm-fake serving google.cloud.secretmanager.v1 (plaintext gRPC and HTTP/JSON) on %s", lis.Addr())
	if err := srv.Serve(grpcL); err != nil {
		log.Fatalf("serve: %v", err)
	}
}
