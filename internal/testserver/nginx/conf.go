package nginx

import (
	"fmt"
	"path/filepath"
	"strings"
)

// tempDirs are nginx's temporary paths, all kept inside the prefix so that
// nothing under /var/lib/nginx is needed.
var tempDirs = []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"}

// conf is what varies between generated configurations.
type conf struct {
	Prefix, Root      string
	Port              int
	CertFile, KeyFile string
	RateLimit         string
	ServerConfig      string
	User              string
	Modules           map[string]bool
}

// logFormat is tab-separated: nginx escapes control characters, quotes and
// backslashes in variables (escape=default), so a tab never appears inside
// a field. Empty values are logged as "-".
const logFormat = "$request_method\t$request_uri\t$status\t$body_bytes_sent\t$http_range\t$request_completion\t$msec"

func (c conf) render() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("# Generated for one test; removed when the test ends.")
	p("daemon off;")
	p("master_process on;")
	p("worker_processes 1;")
	p("pid %s;", quote(filepath.Join(c.Prefix, "nginx.pid")))
	p("error_log %s notice;", quote(filepath.Join(c.Prefix, "error.log")))
	if c.User != "" {
		p("user %s;", c.User)
	}
	p("events { worker_connections 512; }")
	p("http {")
	p("    types {")
	p("        application/octet-stream bin gguf safetensors;")
	p("        application/json json;")
	p("        text/plain txt;")
	p("    }")
	p("    default_type application/octet-stream;")
	p("    log_format provisioner_test escape=default %s;", quote(logFormat))
	p("    access_log %s provisioner_test;", quote(filepath.Join(c.Prefix, "access.log")))
	p("    sendfile on;")
	p("    tcp_nopush on;")
	p("    server_tokens off;")
	p("    keepalive_timeout 30s;")
	p("    client_body_temp_path %s;", quote(filepath.Join(c.Prefix, "tmp", "client_body")))
	for _, m := range []string{"proxy", "fastcgi", "uwsgi", "scgi"} {
		if c.Modules[m] {
			p("    %s_temp_path %s;", m, quote(filepath.Join(c.Prefix, "tmp", m)))
		}
	}
	p("    server {")
	if c.CertFile != "" {
		p("        listen 127.0.0.1:%d ssl;", c.Port)
		p("        ssl_certificate %s;", quote(c.CertFile))
		p("        ssl_certificate_key %s;", quote(c.KeyFile))
		p("        ssl_protocols TLSv1.2 TLSv1.3;")
	} else {
		p("        listen 127.0.0.1:%d;", c.Port)
	}
	p("        server_name 127.0.0.1 localhost;")
	p("        root %s;", quote(c.Root))
	p("        location / {")
	if c.RateLimit != "" {
		p("            limit_rate %s;", c.RateLimit)
	}
	p("        }")
	if c.ServerConfig != "" {
		p("%s", c.ServerConfig)
	}
	p("    }")
	p("}")
	return b.String()
}

// quote makes s one nginx configuration token.
func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}
