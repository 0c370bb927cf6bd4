package extauthzgrpc

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/bffgate/bffgate/internal/extauthz"
)

// Serve runs the gRPC service (Authorization and grpc.health.v1) on grpcLn
// and, when httpLn is not nil, the HTTP one of `bffgate extauthz` on it,
// until ctx ends; then it stops both gracefully (at most 5 seconds).
func Serve(ctx context.Context, s *extauthz.Server, grpcLn, httpLn net.Listener) error {
	gs := grpc.NewServer(grpc.MaxRecvMsgSize(1 << 20))
	authv3.RegisterAuthorizationServer(gs, New(s))
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus(authv3.Authorization_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)

	errc := make(chan error, 2)
	go func() { errc <- gs.Serve(grpcLn) }()
	var hsrv *http.Server
	if httpLn != nil {
		hsrv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10}
		go func() {
			if err := hsrv.Serve(httpLn); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
				return
			}
			errc <- nil
		}()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	hs.Shutdown() // health checks answer NOT_SERVING while draining
	stopped := make(chan struct{})
	go func() { gs.GracefulStop(); close(stopped) }()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if hsrv != nil {
		_ = hsrv.Shutdown(sctx)
	}
	select {
	case <-stopped:
	case <-sctx.Done():
		gs.Stop()
	}
	return err
}
