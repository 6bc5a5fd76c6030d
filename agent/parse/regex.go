package parse

import (
	"github.com/sluicelog/sluice/agent/pipeline"
	"github.com/sluicelog/sluice/agent/regexp/anchored"
)

// regexParser is common_reg_log: the regex must match the whole event (boost
// regex_match in Logtail); group i becomes field keys[i]. A group that did
// not take part in the match gives an empty value.
type regexParser struct {
	re   *anchored.Regexp
	keys []string
}

func (p *regexParser) parse(w *worker, out *pipeline.Batch, raw string) reason {
	if n := 2 * (len(p.keys) + 1); cap(w.caps) < n {
		w.caps = make([]int, n) // kept even when the match fails
	}
	loc := p.re.FindSubmatchIndex(w.caps[:0], bytesOf(raw))
	if loc == nil {
		return reasonRegex
	}
	w.caps = loc
	for i, k := range p.keys {
		a, b := loc[2*i+2], loc[2*i+3]
		if a < 0 {
			out.AddFieldString(k, "")
			continue
		}
		out.AddFieldString(k, raw[a:b])
	}
	return ok
}

// The console's NGINX mode for the default `combined` log_format:
//
//	$remote_addr - $remote_user [$time_local] "$request" $status
//	$body_bytes_sent "$http_referer" "$http_user_agent"
//
// "$request" is split into method, URI and protocol; a request line that is
// not three words (`"-"`, garbage sent to the port) still parses, with the
// missing parts empty. Fields appended by extended formats
// ("$http_x_forwarded_for" …) are tolerated and not extracted.
const NginxRegex = `(\S*) - (\S*) \[([^\]]*)\] "([^" ]*) ?([^" ]*) ?([^"]*)" (\d{3}) (\d+|-) "([^"]*)" "([^"]*)".*`

// NginxKeys names the groups of NginxRegex.
var NginxKeys = []string{
	"remote_addr", "remote_user", "time_local", "request_method", "request_uri", "http_version",
	"status", "body_bytes_sent", "http_referer", "http_user_agent",
}

// NginxTimeFormat is the strftime format of $time_local.
const NginxTimeFormat = "%d/%b/%Y:%H:%M:%S %z"
