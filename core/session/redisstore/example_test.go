package redisstore_test

import (
	"encoding/json"
	"fmt"

	"github.com/bffgate/bffgate/core/session/redisstore"
)

// A Config read from JSON, as the Tyk config file or Kong's plugin config
// holds it. New makes no network call.
func ExampleNew() {
	raw := `{
		"addrs": ["sentinel-1:26379", "sentinel-2:26379"],
		"master_name": "mymaster",
		"db": 2,
		"key_prefix": "shop-bff:"
	}`
	var cfg redisstore.Config
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		fmt.Println(err)
		return
	}
	store, err := redisstore.New(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()
	fmt.Println("store built")
	// Output: store built
}

// Configuration mistakes name the field and the fix.
func ExampleConfigError() {
	_, err := redisstore.New(redisstore.Config{Addrs: []string{"redis-0:6379", "redis-1:6379"}, DB: 2})
	fmt.Println(err)
	// Output: redisstore: config: db: is 2 but a Redis Cluster has only database 0: set it to 0, or use Sentinel or one server
}
