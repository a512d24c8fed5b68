package redact_test

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/model-provisioner/model-provisioner/redact"
)

func ExampleString() {
	msg := `Get "https://alice:***@bucket.s3.amazonaws.com/m.gguf?X-Amz-Expires=900&X-Amz-Signature=3f9a": dial tcp 192.0.2.1:443: i/o timeout`
	fmt.Println(redact.String(msg))
	// Output:
	// Get "https://REDACTED@bucket.s3.amazonaws.com/m.gguf?X-Amz-Expires=900&X-Amz-Signature=REDACTED": dial tcp 192.0.2.1:443: i/o timeout
}

func ExampleNewHandler() {
	secrets := &redact.Secrets{}
	secrets.Add("registry-password-from-file\n")

	removeTime := func(groups []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey && len(groups) == 0 {
			return slog.Attr{}
		}
		return a
	}
	text := slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: removeTime})
	log := slog.New(redact.NewHandler(text, secrets))

	log.Info("login failed", "registry", "oci://robot:registry-password-from-file@registry.example", "hf_token", "hf_x")
	// Output:
	// level=INFO msg="login failed" registry=oci://REDACTED@registry.example hf_token=REDACTED
}
