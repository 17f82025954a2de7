// Command daprd is the Dapr sidecar (github.com/dapr/dapr v1.14.0, as pinned
// in go.mod) that the Dapr-mode tests run: upstream's cmd/daprd main, built
// with -tags stablecomponents, plus the SMTP output binding, which upstream
// registers only in the allcomponents flavour (bindings.smtp is alpha).
//
// Why not -tags allcomponents: that flavour links every alpha component, and
// one of them (bindings.kitex, through github.com/cloudwego/kitex) needs
// github.com/choleraehyq/pid v0.0.18, whose assembly reads runtime internals
// through offsets generated only for Go < 1.23: with a newer Go it fails
// ("pid_go1.5_amd64.s: expected pseudo-register; found R13"). The stable set
// has every other component this project uses (pubsub.kafka, state.redis,
// bindings.cron, secretstores.local.file, secretstores.kubernetes) and
// builds in about half the time.
//
// scripts/daprd builds it into a cache directory; the binary is never
// committed.
package main

import (
	"github.com/dapr/components-contrib/bindings/smtp"
	"github.com/dapr/dapr/cmd/daprd/app"
	bindingsLoader "github.com/dapr/dapr/pkg/components/bindings"
)

func init() {
	// As github.com/dapr/dapr/cmd/daprd/components/binding_smtp.go does.
	bindingsLoader.DefaultRegistry.RegisterOutputBinding(smtp.NewSMTP, "smtp")
}

func main() {
	app.Run()
}
