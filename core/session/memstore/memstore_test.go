package memstore_test

import (
	"testing"

	"github.com/bffgate/bffgate/core/session/memstore"
	"github.com/bffgate/bffgate/core/session/sessiontest"
)

func TestConformance(t *testing.T) {
	sessiontest.Run(t, func(t *testing.T) sessiontest.Harness {
		clock := sessiontest.NewClock()
		return sessiontest.Harness{Store: memstore.New(clock.Now), Advance: clock.Advance}
	})
}
