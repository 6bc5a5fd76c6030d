package logconfig

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: any input either fails with a ValidationError or parses into a
// config that marshals, re-parses to the same bytes and validates without
// panicking; every validation problem is a *ValidationError.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, name := range files {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(`{"inputDetail":{"logType":"common_reg_log","regex":"(a)(b","key":["a"],"filterKey":["x"],"filterRegex":["["]}}`))
	f.Add([]byte(`{"inputType":"plugin","inputDetail":{"plugin":{"inputs":[{"type":"service_docker_stdout","detail":{"Stdout":false}}]}}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			if len(ValidationErrors(err)) != 1 {
				t.Fatalf("Parse error is not one ValidationError: %v", err)
			}
			return
		}
		out, err := Marshal(c)
		if err != nil {
			t.Fatalf("Marshal after Parse: %v", err)
		}
		c2, err := Parse(out)
		if err != nil {
			t.Fatalf("re-Parse of %s: %v", out, err)
		}
		out2, err := Marshal(c2)
		if err != nil {
			t.Fatalf("second Marshal: %v", err)
		}
		if string(out) != string(out2) {
			t.Fatalf("round trip not stable:\n%s\n%s", out, out2)
		}
		c2.ApplyDefaults()
		err = c2.Validate()
		if err != nil {
			n := 1
			if u, ok := err.(interface{ Unwrap() []error }); ok {
				n = len(u.Unwrap())
			}
			if got := len(ValidationErrors(err)); got != n {
				t.Fatalf("%d of %d problems are not ValidationErrors: %v", n-got, n, err)
			}
		}
	})
}
