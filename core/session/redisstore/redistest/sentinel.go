package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// MasterName is the name the Sentinel of StartSentinel monitors its master
// under.
const MasterName = "mymaster"

// Sentinel is one master, one replica and one Sentinel monitoring them,
// started by StartSentinel. The Sentinel declares the master down after
// 1 s without an answer and fails over alone (quorum 1).
type Sentinel struct {
	Master   *Server // the master at start; after a failover, Replica is
	Replica  *Server
	Sentinel *Server
	Addrs    []string // the Sentinel's address, for Config.Addrs

	client *redis.SentinelClient
}

// StartSentinel starts the topology and returns once the Sentinel knows
// the replica, so that a failover can promote it.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	ctx := context.Background()
	s := &Sentinel{Master: Start(t)}
	s.Replica = Start(t, "--replicaof", "127.0.0.1", strconv.Itoa(s.Master.Port))
	mc := s.Master.Client(t, 0)
	waitFor(t, "replica online at the master", 10*time.Second, func() (bool, string) {
		info, err := mc.Info(ctx, "replication").Result()
		if err != nil {
			return false, err.Error()
		}
		return strings.Contains(info, "state=online"), firstLines(info, 4)
	})
	// The Sentinel learns of replicas from the master's INFO, which it
	// reads on connecting and then every 10 s: start it only now.
	s.Sentinel = launch(t, func(port int, dir string) []string {
		conf := filepath.Join(dir, "sentinel.conf") // Sentinel rewrites it
		text := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\n"+
			"sentinel monitor %s 127.0.0.1 %d 1\n"+
			"sentinel down-after-milliseconds %s 1000\n"+
			"sentinel failover-timeout %s 3000\n",
			port, dir, MasterName, s.Master.Port, MasterName, MasterName)
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			t.Fatalf("redistest: %v", err)
		}
		return []string{conf, "--sentinel"}
	})
	s.Addrs = []string{s.Sentinel.Addr}
	s.client = redis.NewSentinelClient(&redis.Options{Addr: s.Sentinel.Addr})
	t.Cleanup(func() { _ = s.client.Close() })
	waitFor(t, "Sentinel sees the replica", 15*time.Second, func() (bool, string) {
		rs, err := s.client.Replicas(ctx, MasterName).Result()
		if err != nil {
			return false, err.Error()
		}
		for _, r := range rs {
			if r["port"] == strconv.Itoa(s.Replica.Port) && r["flags"] == "slave" && r["master-link-status"] == "ok" {
				return true, ""
			}
		}
		return false, fmt.Sprint(rs)
	})
	return s
}

// MasterAddr returns the address the Sentinel currently gives for the
// master.
func (s *Sentinel) MasterAddr(t testing.TB) string {
	t.Helper()
	a, err := s.client.GetMasterAddrByName(context.Background(), MasterName).Result()
	if err != nil || len(a) != 2 {
		t.Fatalf("redistest: SENTINEL GET-MASTER-ADDR-BY-NAME: %q, %v", a, err)
	}
	return net.JoinHostPort(a[0], a[1])
}

// WaitMaster waits up to timeout for the Sentinel to give addr as the
// master, e.g. for a failover to finish.
func (s *Sentinel) WaitMaster(t testing.TB, addr string, timeout time.Duration) {
	t.Helper()
	waitFor(t, "Sentinel names "+addr+" master", timeout, func() (bool, string) {
		a, err := s.client.GetMasterAddrByName(context.Background(), MasterName).Result()
		if err != nil || len(a) != 2 {
			return false, fmt.Sprint(a, err)
		}
		got := net.JoinHostPort(a[0], a[1])
		return got == addr, got
	})
}
