// Command gcpsm-fake serves the google.cloud.secretmanager.v1.SecretManagerService gRPC API from memory, on
// plaintext gRPC, for syncret's integration tests. It is syncret's own test double (the upstream emulators are
// not obtainable here; see docs/providers/test-servers.md), built on the official generated protos.
//
//	gcpsm-fake -addr 127.0.0.1:PORT [-request-log FILE] [-require-token TOKEN]
//
// Served: CreateSecret, GetSecret, ListSecrets (filter: `name:SUBSTR`, `labels.KEY=VALUE`, `labels.KEY:*`,
// space-separated terms ANDed; paging), UpdateSecret (labels, annotations, version_aliases), DeleteSecret (etag),
// AddSecretVersion (payload CRC32C checked), GetSecretVersion, AccessSecretVersion (`latest`, numbers, aliases),
// ListSecretVersions, EnableSecretVersion, DisableSecretVersion, DestroySecretVersion. Everything else answers
// UNIMPLEMENTED. Every call is appended to FILE as one JSON line {"method","name","authorization","code"}.
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

// splitSecret parses projects/P/secrets/S.
func splitSecret(name string) (string, error) {
	p := strings.Split(name, "/")
	if len(p) != 4 || p[0] != "projects" || p[2] != "secrets" || p[1] == "" || p[3] == "" {
		return "", status.Errorf(codes.InvalidArgument, "invalid secret name %q", name)
	}
	return name, nil
}

// splitVersion parses projects/P/secrets/S/versions/V.
func splitVersion(name string) (string, string, error) {
	p := strings.Split(name, "/")
	if len(p) != 6 || p[4] != "versions" || p[5] == "" {
		return "", "", status.Errorf(codes.InvalidArgument, "invalid secret version name %q", name)
	}
	sec, err := splitSecret(strings.Join(p[:4], "/"))
	return sec, p[5], err
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
	if !strings.HasPrefix(r.Parent, "projects/") || strings.Count(r.Parent, "/") != 1 || r.SecretId == "" {
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
	// Newest first, as the real service.
	var all []*smpb.SecretVersion
	for i := len(sec.versions) - 1; i >= 0; i-- {
		all = append(all, sec.versions[i].meta)
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

func (l *requestLog) interceptor(requireToken string) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		method := info.FullMethod[strings.LastIndex(info.FullMethod, "/")+1:]
		authz := ""
		if md, ok := metadata.FromIncomingContext(ctx); ok {
			if v := md.Get("authorization"); len(v) > 0 {
				authz = v[0]
			}
		}
		var resp any
		var err error
		if requireToken != "" && authz != "Bearer "+requireToken && !strings.HasPrefix(info.FullMethod, "/grpc.health.") {
			err = status.Error(codes.Unauthenticated, "missing or wrong bearer token")
		} else {
			resp, err = handler(ctx, req)
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
		if l.f != nil && !strings.HasPrefix(info.FullMethod, "/grpc.health.") {
			line, _ := json.Marshal(map[string]string{
				"method": method, "name": name, "authorization": authz, "code": status.Code(err).String(),
			})
			l.mu.Lock()
			_, _ = l.f.Write(append(line, '\n'))
			l.mu.Unlock()
		}
		return resp, err
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
	smpb.RegisterSecretManagerServiceServer(srv, newServer())
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() { <-sigs; srv.Stop() }()
	log.Printf("gcpsm-fake serving google.cloud.secretmanager.v1 (plaintext gRPC) on %s", lis.Addr())
	if err := srv.Serve(lis); err != nil {
		log.Fatalf("serve: %v", err)
	}
}
