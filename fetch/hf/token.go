package hf

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// TokenSource says where a token was found, for logs (never the token).
type TokenSource string

// Token finds the Hub token, in order: $HF_TOKEN; the file $HF_TOKEN_PATH;
// the systemd credential $CREDENTIALS_DIRECTORY/hf_token (or hf-token);
// $HF_HOME/token or ~/.cache/huggingface/token. It returns "" and no error
// when there is none: public repositories need no token.
func Token() (string, TokenSource, error) {
	if t := strings.TrimSpace(os.Getenv("HF_TOKEN")); t != "" {
		return t, "HF_TOKEN", nil
	}
	var files []string
	if p := os.Getenv("HF_TOKEN_PATH"); p != "" {
		files = append(files, p)
	}
	if d := os.Getenv("CREDENTIALS_DIRECTORY"); d != "" {
		files = append(files, filepath.Join(d, "hf_token"), filepath.Join(d, "hf-token"))
	}
	if h := os.Getenv("HF_HOME"); h != "" {
		files = append(files, filepath.Join(h, "token"))
	} else if home, err := os.UserHomeDir(); err == nil {
		files = append(files, filepath.Join(home, ".cache", "huggingface", "token"))
	}
	for _, p := range files {
		data, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", "", fmt.Errorf("read Hugging Face token file %s: %w", p, err)
		}
		if t := strings.TrimSpace(string(data)); t != "" {
			return t, TokenSource(p), nil
		}
	}
	return "", "", nil
}
