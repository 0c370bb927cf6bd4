package redistest

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Cluster is a Redis Cluster of masters only, started by StartCluster.
type Cluster struct {
	Addrs []string  // every node's address, for Config.Addrs
	Nodes []*Server // in the order of their slot ranges
}

// StartCluster starts a Redis Cluster of masters (at least 3) with no
// replicas, the 16384 slots split evenly between them, and returns once
// every node reports cluster_state:ok. It assigns slots and introduces the
// nodes itself (CLUSTER ADDSLOTSRANGE, SET-CONFIG-EPOCH, MEET), which is
// what redis-cli --cluster create does, without its one-second polls.
func StartCluster(t testing.TB, masters int) *Cluster {
	t.Helper()
	if masters < 3 {
		t.Fatalf("redistest: a Redis Cluster needs at least 3 masters, not %d", masters)
	}
	ctx := context.Background()
	c := &Cluster{}
	buses := make([]int, masters)
	for i := range masters {
		buses[i] = FreePort(t)
		n := Start(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "2000", "--cluster-port", strconv.Itoa(buses[i]))
		c.Nodes = append(c.Nodes, n)
		c.Addrs = append(c.Addrs, n.Addr)
	}
	const slots = 16384
	for i, n := range c.Nodes {
		rc := n.Client(t, 0)
		lo, hi := i*slots/masters, (i+1)*slots/masters-1
		if err := rc.Do(ctx, "cluster", "addslotsrange", lo, hi).Err(); err != nil {
			t.Fatalf("redistest: node %s: CLUSTER ADDSLOTSRANGE %d %d: %v", n.Addr, lo, hi, err)
		}
		if err := rc.Do(ctx, "cluster", "set-config-epoch", i+1).Err(); err != nil {
			t.Fatalf("redistest: node %s: CLUSTER SET-CONFIG-EPOCH: %v", n.Addr, err)
		}
	}
	first := c.Nodes[0].Client(t, 0)
	for i, n := range c.Nodes[1:] {
		if err := first.Do(ctx, "cluster", "meet", "127.0.0.1", n.Port, buses[i+1]).Err(); err != nil {
			t.Fatalf("redistest: CLUSTER MEET %s: %v", n.Addr, err)
		}
	}
	for _, n := range c.Nodes {
		rc := n.Client(t, 0)
		waitFor(t, "cluster_state:ok on "+n.Addr, 20*time.Second, func() (bool, string) {
			info, err := rc.ClusterInfo(ctx).Result()
			if err != nil {
				return false, err.Error()
			}
			ok := strings.Contains(info, "cluster_state:ok") &&
				strings.Contains(info, fmt.Sprintf("cluster_known_nodes:%d\r\n", masters))
			return ok, firstLines(info, 3)
		})
	}
	return c
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], " ")
}
