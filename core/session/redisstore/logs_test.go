package redisstore_test

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/bffgate/bffgate/core/session/redisstore"
	"github.com/bffgate/bffgate/core/session/redisstore/redistest"
	"github.com/bffgate/bffgate/tests/flowtest"
)

// Not parallel: go-redis's logger is the process's. Other tests' lines
// may land in the buffers too; the test looks for its own.
func TestLogTo(t *testing.T) {
	var first, second flowtest.SyncBuffer
	redisstore.LogTo(slog.New(slog.NewJSONHandler(&first, nil)))
	redisstore.LogTo(slog.New(slog.NewJSONHandler(&second, nil)))
	redisstore.LogTo(nil) // ignored
	t.Cleanup(func() { redisstore.LogTo(slog.New(slog.DiscardHandler)) })

	// A client to a port nothing listens on: go-redis logs the failed dial.
	addr := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	if err := c.Ping(context.Background()).Err(); err == nil {
		t.Fatalf("PING %s answered; want a dial failure", addr)
	}
	got := second.String()
	want := `"msg":"redisstore: go-redis","detail":"redis: connection pool: failed to dial`
	if !strings.Contains(got, want) || !strings.Contains(got, addr) {
		t.Fatalf("log after a failed dial:\n%s\nwant a WARN record containing %s and the address", got, want)
	}
	if !strings.Contains(got, `"level":"WARN"`) {
		t.Fatalf("log = %s, want level WARN", got)
	}
	if strings.Contains(first.String(), addr) {
		t.Fatalf("the first logger still gets lines after LogTo changed it: %s", first.String())
	}
}
