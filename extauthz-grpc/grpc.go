// Package extauthzgrpc is bffgate's Envoy ext_authz service over gRPC
// (envoy.service.auth.v3.Authorization/Check), for Envoy and Istio. It is
// its own Go module, so that go-control-plane and grpc never enter the
// module that the Tyk plugin is built from; it runs the same apps, config
// file and engine as `bffgate extauthz`.
//
// Every request maps onto one Check: an allow is an OkHttpResponse with
// the headers to set upstream (Authorization, identity headers, the
// cookies less the BFF's) and the headers to remove (the session cookie,
// forged identity headers and their look-alikes); everything the engine
// answers itself — login's 302, the callback, /session, /token, /logout,
// every 4xx and 5xx — is a DeniedHttpResponse with the engine's status,
// headers and body, so Envoy needs no other route to bffgate.
// Back-channel logout reads the body: enable with_request_body, or route
// that path to bffgate's HTTP listener.
package extauthzgrpc

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/bffgate/bffgate/core/bff"
	"github.com/bffgate/bffgate/internal/extauthz"
)

// maxHeaderBytes caps the headers of one check, as the HTTP listener
// does (Envoy's own default limit is 60 KiB).
const maxHeaderBytes = 64 << 10

// Server answers Envoy's Check calls. It is safe for concurrent use.
type Server struct {
	authv3.UnimplementedAuthorizationServer
	s *extauthz.Server
}

var _ authv3.AuthorizationServer = (*Server)(nil)

// New wraps the apps of an extauthz.Server.
func New(s *extauthz.Server) *Server { return &Server{s: s} }

// Check decides on one request. It never returns an error: every refusal
// is a DeniedHttpResponse, so Envoy answers the client with it whatever
// its failure_mode_allow says.
func (g *Server) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	remote := ""
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		remote = p.Addr.String()
	}
	md, _ := metadata.FromIncomingContext(ctx)
	if !g.s.Trusted(remote, md.Get(g.s.SecretHeader())) {
		return denied(bff.ErrorResult(http.StatusForbidden, bff.CodeInvalidRequest, "the request does not come from the trusted proxy")), nil
	}
	hr := req.GetAttributes().GetRequest().GetHttp()
	if hr == nil {
		return denied(bff.ErrorResult(http.StatusBadRequest, bff.CodeInvalidRequest, "the check request has no HTTP attributes")), nil
	}
	h := http.Header{}
	size := 0
	for k, v := range hr.GetHeaders() {
		if !strings.HasPrefix(k, ":") { // :path and :method are checked apart
			size += len(k) + len(v)
			h[http.CanonicalHeaderKey(k)] = []string{v}
		}
	}
	for _, hv := range hr.GetHeaderMap().GetHeaders() { // encode_raw_headers
		if k := hv.GetKey(); !strings.HasPrefix(k, ":") {
			v := hv.GetValue()
			if raw := hv.GetRawValue(); len(raw) > 0 {
				v = string(raw)
			}
			size += len(k) + len(v)
			k = http.CanonicalHeaderKey(k)
			h[k] = append(h[k], v)
		}
	}
	if size > maxHeaderBytes {
		return denied(bff.ErrorResult(http.StatusRequestHeaderFieldsTooLarge, bff.CodeInvalidRequest, "the request headers are too large")), nil
	}
	var body io.Reader
	if b := hr.GetRawBody(); len(b) > 0 {
		body = bytes.NewReader(b)
	} else if b := hr.GetBody(); b != "" {
		body = strings.NewReader(b)
	}
	res := g.s.Check(ctx, hr.GetMethod(), hr.GetPath(), hr.GetHost(), h, body)
	if !res.Forward() {
		return denied(res), nil
	}
	return allowed(&res), nil
}

func option(name, value string, action corev3.HeaderValueOption_HeaderAppendAction) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: strings.ToLower(name), Value: value}, AppendAction: action}
}

// allowed is an OkHttpResponse: Set overwrites, Del removes (Envoy
// removes hop-by-hop headers, Connection among them, itself).
func allowed(res *bff.Result) *authv3.CheckResponse {
	ok := &authv3.OkHttpResponse{}
	for name, v := range res.Set {
		if name != "Connection" {
			ok.Headers = append(ok.Headers, option(name, strings.Join(v, ", "), corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD))
		}
	}
	for _, name := range res.Del {
		if _, set := res.Set[http.CanonicalHeaderKey(name)]; !set && name != "Connection" {
			ok.HeadersToRemove = append(ok.HeadersToRemove, strings.ToLower(name))
		}
	}
	for name, v := range res.ResponseHeader {
		ok.ResponseHeadersToAdd = append(ok.ResponseHeadersToAdd, option(name, strings.Join(v, ", "), corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD))
	}
	return &authv3.CheckResponse{
		Status:       &rpcstatus.Status{Code: int32(codes.OK)},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: ok},
	}
}

// denied is a DeniedHttpResponse with the engine's answer; several values
// of one header (Set-Cookie) are sent as several headers.
func denied(res bff.Result) *authv3.CheckResponse {
	d := &authv3.DeniedHttpResponse{Status: &typev3.HttpStatus{Code: typev3.StatusCode(res.Status)}, Body: string(res.Body)}
	for name, vs := range res.Header {
		for i, v := range vs {
			action := corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
			if i > 0 {
				action = corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD
			}
			d.Headers = append(d.Headers, option(name, v, action))
		}
	}
	return &authv3.CheckResponse{
		Status:       &rpcstatus.Status{Code: int32(codes.PermissionDenied)},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: d},
	}
}
