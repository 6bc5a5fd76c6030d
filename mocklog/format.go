package mocklog

import (
	"bytes"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// Log types.
const (
	LogTypeNginx         = "nginx"
	LogTypeJSON          = "json"
	LogTypeApsara        = "apsara"
	LogTypeJavaMultiline = "java-multiline"
)

// LogTypes lists the accepted Options.LogType values.
func LogTypes() []string {
	return []string{LogTypeNginx, LogTypeJSON, LogTypeApsara, LogTypeJavaMultiline}
}

// Formats, for the agent's parsers and for users writing their own regexes.
const (
	// NginxLogFormat is the nginx log_format the nginx lines follow: the
	// "combined" format plus $request_time.
	NginxLogFormat = `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $request_time`
	// NginxRegex parses one nginx line (11 groups, see NginxKeys).
	NginxRegex = `(\S+) - (\S+) \[([^\]]+)\] "(\S+) (\S+) (\S+)" (\d{3}) (\d+) "([^"]*)" "([^"]*)" (\S+)`
	// NginxTimeFormat is $time_local in strftime.
	NginxTimeFormat = "%d/%b/%Y:%H:%M:%S %z"
	// JavaBeginRegex starts a java-multiline event (logBeginRegex).
	JavaBeginRegex = `\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3} .*`
)

// NginxKeys names NginxRegex's groups.
func NginxKeys() []string {
	return []string{"remote_addr", "remote_user", "time_local", "method", "request_uri", "protocol",
		"status", "body_bytes_sent", "http_referer", "http_user_agent", "request_time"}
}

// clock holds the timestamp strings of the current millisecond, so a batch
// formats them once instead of once per event.
type clock struct {
	ms     int64
	nginx  []byte // 23/Nov/2026:10:47:08 +0000
	iso    []byte // 2026-11-23T10:47:08.123Z07:00
	apsara []byte // 2026-11-23 10:47:08.123000
	java   []byte // 2026-11-23 10:47:08.123
	// rfc3339 is the container runtime's timestamp, UTC.
	rfc3339 []byte // 2026-11-23T10:47:08.123Z
}

func (c *clock) set(t time.Time) {
	ms := t.UnixMilli()
	if ms == c.ms && c.nginx != nil {
		return
	}
	c.ms = ms
	c.nginx = t.AppendFormat(c.nginx[:0], "02/Jan/2006:15:04:05 -0700")
	c.iso = t.AppendFormat(c.iso[:0], "2006-01-02T15:04:05.000Z07:00")
	c.apsara = t.AppendFormat(c.apsara[:0], "2006-01-02 15:04:05.000000")
	c.java = t.AppendFormat(c.java[:0], "2006-01-02 15:04:05.000")
	c.rfc3339 = appendRFC3339Nano(c.rfc3339[:0], t)
}

// formatter appends one event (with its trailing newline) and reports how
// many physical lines it wrote.
type formatter func(dst []byte, seq uint64, c *clock, r *rand.Rand) ([]byte, int)

func formatterFor(logType string) formatter {
	switch logType {
	case LogTypeNginx:
		return appendNginx
	case LogTypeJSON:
		return appendJSON
	case LogTypeApsara:
		return appendApsara
	case LogTypeJavaMultiline:
		return appendJava
	}
	return nil
}

var (
	methods     = []string{"GET", "GET", "GET", "GET", "GET", "POST", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS"}
	uriPrefixes = []string{"/", "/index.html", "/api/v1/users/", "/api/v1/orders/", "/api/v2/search?q=shoes", "/static/js/app.", "/static/css/site.", "/images/products/", "/cart/items/", "/healthz", "/login", "/checkout/confirm?step=2"}
	uriNumbered = []bool{false, false, true, true, false, true, true, true, true, false, false, false}
	uriSuffixes = []string{"", "", "", "", "", ".js", ".css", ".jpg", "", "", "", ""}
	statuses    = []string{"200", "200", "200", "200", "200", "200", "200", "200", "200", "200", "200", "200", "304", "301", "302", "201", "204", "400", "401", "403", "404", "404", "429", "500", "502", "503", "504"}
	users       = []string{"-", "-", "-", "-", "-", "-", "-", "alice", "bob", "svc-batch"}
	referers    = []string{"-", "-", "https://www.example.com/", "https://www.example.com/products/shoes", "https://www.google.com/search?q=example+shop", "https://t.co/xyz", "http://localhost:3000/dev"}
	agents      = []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
		"Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
		"curl/8.5.0",
		"Go-http-client/1.1",
		"kube-probe/1.29",
		"Googlebot/2.1 (+http://www.google.com/bot.html)",
		"python-requests/2.31.0",
	}
	protocols = []string{"HTTP/1.1", "HTTP/1.1", "HTTP/1.1", "HTTP/2.0", "HTTP/1.0"}
)

func pick(r *rand.Rand, list []string) string { return list[r.IntN(len(list))] }

func appendIP(dst []byte, r *rand.Rand) []byte {
	v := r.Uint32()
	dst = strconv.AppendUint(dst, uint64(v>>24%223+1), 10) // 1..223: unicast
	dst = append(dst, '.')
	dst = strconv.AppendUint(dst, uint64(v>>16&0xff), 10)
	dst = append(dst, '.')
	dst = strconv.AppendUint(dst, uint64(v>>8&0xff), 10)
	dst = append(dst, '.')
	return strconv.AppendUint(dst, uint64(v&0xff%254+1), 10)
}

// appendMillis writes ms as seconds with three decimals: 1234 → 1.234.
func appendMillis(dst []byte, ms uint64) []byte {
	dst = strconv.AppendUint(dst, ms/1000, 10)
	frac := ms % 1000
	return append(dst, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
}

func appendNginx(dst []byte, seq uint64, c *clock, r *rand.Rand) ([]byte, int) {
	dst = appendIP(dst, r)
	dst = append(dst, " - "...)
	dst = append(dst, pick(r, users)...)
	dst = append(dst, " ["...)
	dst = append(dst, c.nginx...)
	dst = append(dst, "] \""...)
	dst = append(dst, pick(r, methods)...)
	dst = append(dst, ' ')
	i := r.IntN(len(uriPrefixes))
	dst = append(dst, uriPrefixes[i]...)
	if uriNumbered[i] {
		dst = strconv.AppendUint(dst, r.Uint64N(100000), 10)
		dst = append(dst, uriSuffixes[i]...)
	}
	if strings.IndexByte(uriPrefixes[i], '?') >= 0 {
		dst = append(dst, "&seq="...)
	} else {
		dst = append(dst, "?seq="...)
	}
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, ' ')
	dst = append(dst, pick(r, protocols)...)
	dst = append(dst, "\" "...)
	status := pick(r, statuses)
	dst = append(dst, status...)
	dst = append(dst, ' ')
	if status == "304" || status == "204" {
		dst = append(dst, '0')
	} else {
		dst = strconv.AppendUint(dst, 100+r.Uint64N(50000), 10)
	}
	dst = append(dst, " \""...)
	dst = append(dst, pick(r, referers)...)
	dst = append(dst, "\" \""...)
	dst = append(dst, pick(r, agents)...)
	dst = append(dst, "\" "...)
	// request_time: mostly fast, a long tail.
	ms := r.Uint64N(120)
	if r.IntN(20) == 0 {
		ms += r.Uint64N(5000)
	}
	dst = appendMillis(dst, ms)
	return append(dst, '\n'), 1
}

var (
	levels   = []string{"INFO", "INFO", "INFO", "INFO", "INFO", "INFO", "DEBUG", "DEBUG", "WARN", "ERROR"}
	loggers  = []string{"http.server", "orders.service", "payments.client", "db.pool", "auth.middleware", "cache.redis"}
	messages = []string{
		"request completed", "order created", "payment authorized", "connection acquired from pool",
		"token verified", "cache miss, loading from database", "retrying upstream call", "slow query detected",
		"user signed in", "inventory reserved",
	}
)

func appendJSON(dst []byte, seq uint64, c *clock, r *rand.Rand) ([]byte, int) {
	dst = append(dst, `{"time":"`...)
	dst = append(dst, c.iso...)
	dst = append(dst, `","level":"`...)
	dst = append(dst, pick(r, levels)...)
	dst = append(dst, `","seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"logger":"`...)
	dst = append(dst, pick(r, loggers)...)
	dst = append(dst, `","msg":"`...)
	dst = append(dst, pick(r, messages)...)
	dst = append(dst, `","user_id":`...)
	dst = strconv.AppendUint(dst, 1000+r.Uint64N(90000), 10)
	dst = append(dst, `,"client_ip":"`...)
	dst = appendIP(dst, r)
	dst = append(dst, `","latency_ms":`...)
	dst = appendMillis(dst, r.Uint64N(250000))
	dst = append(dst, `,"ok":`...)
	if r.IntN(10) == 0 {
		dst = append(dst, "false"...)
	} else {
		dst = append(dst, "true"...)
	}
	return append(dst, "}\n"...), 1
}

var sourceFiles = []string{"/build/apsara/common/logging/logger.cpp:207", "/build/pangu/chunkserver/write.cpp:1184", "/build/fuxi/master/scheduler.cpp:92", "/build/nuwa/client/session.cpp:311"}

func appendApsara(dst []byte, seq uint64, c *clock, r *rand.Rand) ([]byte, int) {
	dst = append(dst, '[')
	dst = append(dst, c.apsara...)
	dst = append(dst, "]\t["...)
	dst = append(dst, pick(r, levels)...)
	dst = append(dst, "]\t["...)
	dst = strconv.AppendUint(dst, 1000+r.Uint64N(60000), 10)
	dst = append(dst, "]\t"...)
	dst = append(dst, pick(r, sourceFiles)...)
	dst = append(dst, "\tseq:"...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, "\tmodule:"...)
	dst = append(dst, pick(r, loggers)...)
	dst = append(dst, "\tlatency_us:"...)
	dst = strconv.AppendUint(dst, r.Uint64N(1000000), 10)
	dst = append(dst, "\tmsg:"...)
	dst = append(dst, pick(r, messages)...)
	return append(dst, '\n'), 1
}

var (
	javaThreads    = []string{"main", "http-nio-8080-exec-1", "http-nio-8080-exec-7", "scheduling-1", "kafka-consumer-3"}
	javaClasses    = []string{"com.example.orders.OrderService", "com.example.payments.PaymentClient", "com.example.web.ApiController", "com.example.db.Repository"}
	javaExceptions = []string{"java.lang.IllegalStateException: order already paid", "java.net.SocketTimeoutException: Read timed out", "java.lang.NullPointerException: Cannot invoke \"String.length()\" because \"name\" is null", "org.springframework.dao.DataAccessResourceFailureException: Unable to acquire JDBC Connection"}
	javaFrames     = []string{
		"\tat com.example.orders.OrderService.pay(OrderService.java:142)",
		"\tat com.example.orders.OrderService.lambda$process$0(OrderService.java:88)",
		"\tat com.example.web.ApiController.handle(ApiController.java:57)",
		"\tat org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:883)",
		"\tat jakarta.servlet.http.HttpServlet.service(HttpServlet.java:658)",
		"\tat org.apache.catalina.core.ApplicationFilterChain.doFilter(ApplicationFilterChain.java:166)",
		"\tat java.base/java.util.concurrent.ThreadPoolExecutor.runWorker(ThreadPoolExecutor.java:1136)",
		"\tat java.base/java.lang.Thread.run(Thread.java:833)",
	}
)

func appendJava(dst []byte, seq uint64, c *clock, r *rand.Rand) ([]byte, int) {
	dst = append(dst, c.java...)
	level := pick(r, levels)
	dst = append(dst, ' ')
	dst = append(dst, level...)
	dst = append(dst, " ["...)
	dst = append(dst, pick(r, javaThreads)...)
	dst = append(dst, "] "...)
	dst = append(dst, pick(r, javaClasses)...)
	dst = append(dst, " - seq="...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, ' ')
	dst = append(dst, pick(r, messages)...)
	dst = append(dst, '\n')
	lines := 1
	// Most WARN/ERROR events carry a stack trace; continuation lines never
	// start with a date, so JavaBeginRegex splits events correctly.
	if (level == "ERROR" || level == "WARN") && r.IntN(4) != 0 {
		dst = append(dst, pick(r, javaExceptions)...)
		dst = append(dst, '\n')
		n := 2 + r.IntN(len(javaFrames)-1)
		for i := range n {
			dst = append(dst, javaFrames[i]...)
			dst = append(dst, '\n')
		}
		lines += 1 + n
		if r.IntN(3) == 0 {
			dst = append(dst, "Caused by: java.io.IOException: Connection reset by peer\n\tat java.base/sun.nio.ch.SocketDispatcher.read0(Native Method)\n\t... 12 more\n"...)
			lines += 3
		}
	}
	return dst, lines
}

// ParseSeq finds the sequence number mocklog put in a line of any log type
// (nginx "?seq=N" or "&seq=N", json "seq":N, apsara "\tseq:N", java
// " seq=N"), also inside CRI and docker-json container records.
// Continuation lines of java-multiline events have none.
func ParseSeq(line []byte) (uint64, bool) {
	for i := 0; i+3 < len(line); {
		j := bytes.Index(line[i:], []byte("seq"))
		if j < 0 {
			return 0, false
		}
		j += i
		i = j + 3
		if j > 0 {
			switch line[j-1] {
			case '?', '&', '"', '\t', ' ':
			case 't': // an escaped tab (\t) inside a docker-json record
				if j < 2 || line[j-2] != '\\' {
					continue
				}
			case '6': // an escaped & (\u0026) inside a docker-json record
				if j < 6 || string(line[j-6:j]) != `\u0026` {
					continue
				}
			default:
				continue
			}
		}
		k := j + 3
		switch {
		case k < len(line) && (line[k] == '=' || line[k] == ':'):
			k++
		case k+1 < len(line) && line[k] == '"' && line[k+1] == ':':
			k += 2
		case k+2 < len(line) && line[k] == '\\' && line[k+1] == '"' && line[k+2] == ':':
			k += 3 // "seq": escaped inside a docker-json record
		default:
			continue
		}
		start := k
		var n uint64
		for k < len(line) && line[k] >= '0' && line[k] <= '9' && k-start < 19 {
			n = n*10 + uint64(line[k]-'0')
			k++
		}
		if k == start {
			continue
		}
		return n, true
	}
	return 0, false
}
