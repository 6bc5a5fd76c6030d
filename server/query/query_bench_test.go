package query

import "testing"

const benchSearch = `level:error and not (status in [200 299] or __topic__:"health check") and /api/v1/orders* and __tag__:__path__:/var/log/app.log`

func BenchmarkParseCompile(b *testing.B) {
	s := DefaultSchema(testIndex())
	b.SetBytes(int64(len(benchSearch)))
	b.ReportAllocs()
	for b.Loop() {
		q, err := Parse(benchSearch)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := CompileSearch(q.Search, s); err != nil {
			b.Fatal(err)
		}
	}
}

const benchSQL = `select date_format(from_unixtime(__time__ - __time__ % 60), '%H:%i') as t, status, count(*) as pv,
 approx_percentile(latency, 0.99) as p99 from log where status >= 500 group by t, status order by t, pv desc limit 100`

func BenchmarkSandboxSQL(b *testing.B) {
	opt := SandboxOptions{Logstore: "access", Relation: "logs", DefaultLimit: 100}
	b.SetBytes(int64(len(benchSQL)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := SandboxSQL(benchSQL, opt); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendValue(b *testing.B) {
	tok := NewTokenizer(nil, false)
	v := `GET /api/v1/orders?id=12345&user=Alice HTTP/1.1 "Mozilla/5.0 (X11; Linux x86_64)"`
	buf := make([]byte, 0, 256)
	b.SetBytes(int64(len(v)))
	b.ReportAllocs()
	for b.Loop() {
		buf = tok.AppendValue(buf[:0], v)
	}
}
