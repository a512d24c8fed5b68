package content

import (
	"errors"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzCheckRel checks that a remote file name CheckRel accepts lands strictly
// inside the model directory, whatever the root: joined under it, the path
// is below it (filepath.Rel has no ".." and is not absolute or "."), holds no
// NUL, and is already clean, so that accepting it again changes nothing.
func FuzzCheckRel(f *testing.F) {
	for _, s := range []string{
		"model.gguf",
		"sub/dir/model.safetensors",
		"config.json",
		"a\\b",
		"..",
		"../x",
		"a/../../x",
		"a/..",
		"/etc/passwd",
		"\\etc\\passwd",
		"a//b",
		"./a",
		"a/",
		".",
		"",
		"a\x00b",
		"..\\..\\x",
		"C:\\x",
		"...",
		".hidden/..x",
		"a/./b",
	} {
		f.Add(s)
	}
	roots := []string{"/var/lib/model-provisioner/models/m", "/", "/r/..x", "/r/a b"}
	f.Fuzz(func(t *testing.T, rel string) {
		clean, err := CheckRel(rel)
		if err != nil {
			if !errors.Is(err, ErrUnsafePath) {
				t.Fatalf("CheckRel(%q): error %v does not wrap ErrUnsafePath", rel, err)
			}
			return
		}
		if clean == "" || strings.ContainsRune(clean, 0) || strings.ContainsRune(clean, '\\') {
			t.Fatalf("CheckRel(%q) = %q: empty, NUL or backslash", rel, clean)
		}
		if path.Clean(clean) != clean || strings.HasPrefix(clean, "/") {
			t.Fatalf("CheckRel(%q) = %q, which is not clean and relative", rel, clean)
		}
		for _, seg := range strings.Split(clean, "/") {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("CheckRel(%q) = %q with element %q", rel, clean, seg)
			}
		}
		if again, err := CheckRel(clean); err != nil || again != clean {
			t.Fatalf("CheckRel(%q) = %q, but CheckRel(%q) = %q, %v", rel, clean, clean, again, err)
		}
		for _, root := range roots {
			joined := filepath.Join(root, filepath.FromSlash(clean))
			r, err := filepath.Rel(root, joined)
			if err != nil {
				t.Fatalf("CheckRel(%q) = %q: Rel(%q, %q): %v", rel, clean, root, joined, err)
			}
			if r == "." || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) || filepath.IsAbs(r) {
				t.Fatalf("CheckRel(%q) = %q lands at %q, not strictly inside %q", rel, clean, joined, root)
			}
			if !strings.HasPrefix(joined, strings.TrimSuffix(root, "/")+"/") {
				t.Fatalf("CheckRel(%q) = %q lands at %q, outside %q", rel, clean, joined, root)
			}
		}
		// Where Link puts it: models/<name>/<clean>.
		target := path.Join(ModelsDir, "m", clean)
		if !strings.HasPrefix(target, ModelsDir+"/m/") {
			t.Fatalf("CheckRel(%q) = %q: link target %q is outside %s/m", rel, clean, target, ModelsDir)
		}
	})
}
