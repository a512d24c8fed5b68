package redact_test

import (
	"strings"
	"testing"

	"github.com/model-provisioner/model-provisioner/redact"
)

// plantedSecret is put into fuzzed text; it must never come out.
const plantedSecret = "PLANTEDs3cr3tVALUE9"

// plants are ways a secret appears in text, with %s standing for it.
var plants = []string{
	`Get "https://user:%s@host/x": EOF`,
	"https://b.s3.amazonaws.com/k?X-Amz-Signature=%s&x=1",
	"Authorization: Bearer %s",
	"Bearer %s",
	`{"access_token":"%s"}`,
	"api_key=%s",
	"hf_%s0123456789ab",
}

// FuzzString checks that String never panics, leaves text without trigger
// words untouched, is idempotent, and removes a secret planted between
// arbitrary text.
func FuzzString(f *testing.F) {
	seeds := []string{
		"",
		"plain text",
		`Get "https://u:p@h/x?sig=1#f": dial tcp [::1]:443: connect: refused`,
		"https://[fe80::1%25en0]:8080/?token=a&b=%zz",
		"x://https://u:p@h/",
		"https://u:p/w?x#y@h/",
		"://@:?&=#",
		"Authorization:[Bearer abc] bearer realm=\"x\"",
		`"token":"a\"b" \"secret\":\"c\"`,
		"hf_0123456789abcdefghij0123",
		"\xff\xfe://\x00token=\xff",
		strings.Repeat("https://h/?a=", 20),
	}
	for i, s := range seeds {
		f.Add(s, s, uint8(i))
	}
	f.Fuzz(func(t *testing.T, prefix, suffix string, which uint8) {
		got := redact.String(prefix)
		if strings.Count(prefix, "://") == 0 && !strings.ContainsAny(prefix, "aAbBcChHpPsStT") && got != prefix {
			t.Fatalf("text without trigger words changed: %q -> %q", prefix, got)
		}
		if again := redact.String(got); again != got {
			t.Fatalf("not idempotent:\n in: %q\n 1st: %q\n 2nd: %q", prefix, got, again)
		}

		plant := strings.ReplaceAll(plants[int(which)%len(plants)], "%s", plantedSecret)
		text := prefix + " " + plant + " " + suffix
		if out := redact.String(text); strings.Contains(out, plantedSecret) {
			t.Fatalf("secret survived:\n in: %q\nout: %q", text, out)
		}
		_ = redact.URLString(prefix)
	})
}
