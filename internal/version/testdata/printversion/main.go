// Command printversion prints version.Version; version_test.go builds it
// with -ldflags -X to see what an override does.
package main

import (
	"fmt"

	"github.com/bffgate/bffgate/internal/version"
)

func main() { fmt.Println(version.Version) }
