// Command model-provisioner keeps declared models present, verified and
// registered on a GPU host, and tells inference engines where they are.
//
// Run "model-provisioner help" for the subcommands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/model-provisioner/model-provisioner/redact"
)

// command is one subcommand.
type command interface {
	Run(ctx context.Context, args []string) error
}

// usageError is a mistake in how the command was called; it exits 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

const usage = `model-provisioner keeps models present, verified and registered, and writes
the handoff files inference engines read.

Usage:
  model-provisioner <command> [arguments]

Commands:
  run                    run the agent: watch models.d and keep every model present
  status                 show every model's state, from the running agent
  ensure <model_ref>     make one model present and verified; print it as JSON
  validate <file|dir>... check model spec files; exit non-zero on any error
  catalog list           list the models in the catalog
  catalog show <id|name> show one catalog entry as JSON
  version                print the version

Run "model-provisioner <command> --help" for a command's flags.

Configuration comes from /etc/model-provisioner/agent.yaml (or --config),
then MODEL_PROVISIONER_<KEY> environment variables (MODEL_PROVISIONER_STATE_DIR
sets state_dir), then flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches to a subcommand and maps its error to an exit code: 0 on
// success, 1 on failure, 2 on a usage error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	// Secrets loaded by any command (a Hub token) are redacted from every
	// line the process prints, the final error included.
	secrets := &redact.Secrets{}
	var cmd command
	switch args[0] {
	case "run":
		cmd = &runCommand{stdout: stdout, stderr: stderr, secrets: secrets}
	case "status":
		cmd = &statusCommand{stdout: stdout, stderr: stderr}
	case "ensure":
		cmd = &ensureCommand{stdout: stdout, stderr: stderr, secrets: secrets}
	case "validate":
		cmd = &validateCommand{stdout: stdout, stderr: stderr}
	case "catalog":
		cmd = &catalogCommand{stdout: stdout, stderr: stderr}
	case "version", "--version":
		cmd = &versionCommand{stdout: stdout}
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "model-provisioner: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	err := cmd.Run(ctx, args[1:])
	var ue *usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "model-provisioner %s: %s\n", args[0], ue.msg)
		return 2
	case errors.Is(err, errReported):
		return 1
	default:
		fmt.Fprintf(stderr, "model-provisioner %s: %s\n", args[0], oneLine(secrets.Redact(err.Error())))
		return 1
	}
}

// errReported means the command already printed its errors.
var errReported = errors.New("errors reported")

func oneLine(s string) string {
	out := []rune(s)
	for i, r := range out {
		if r == '\n' || r == '\r' {
			out[i] = ' '
		}
	}
	return string(out)
}
