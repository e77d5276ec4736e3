package deploy_test

import (
	"testing"

	"github.com/wasilet/wasilet/internal/clustertest"
)

func TestMain(m *testing.M) { clustertest.Main(m) }
