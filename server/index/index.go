// Package index describes a logstore's index configuration as the Log Service
// API carries it (docs/log-service-api.md §5, "Index API"): how full text is tokenised and
// which keys have typed field indexes. The query compiler, the stores and the
// API all read it.
package index

// Config is the body of the index API (POST/PUT/GET /logstores/{ls}/index).
type Config struct {
	Line       *LineConfig          `json:"line,omitempty"`
	Keys       map[string]KeyConfig `json:"keys,omitempty"`
	TTL        int                  `json:"ttl,omitempty"`
	MaxTextLen int                  `json:"max_text_len,omitempty"`
	LogReduce  bool                 `json:"log_reduce"`
}

// LineConfig configures the full-text index.
type LineConfig struct {
	Token         []string `json:"token"`
	CaseSensitive bool     `json:"caseSensitive"`
	Chn           bool     `json:"chn"`
	IncludeKeys   []string `json:"include_keys,omitempty"`
	ExcludeKeys   []string `json:"exclude_keys,omitempty"`
}

// Key types.
const (
	TypeText   = "text"
	TypeLong   = "long"
	TypeDouble = "double"
	TypeJSON   = "json"
)

// KeyConfig configures the field index of one key.
type KeyConfig struct {
	Type          string               `json:"type"`
	Token         []string             `json:"token,omitempty"`
	CaseSensitive bool                 `json:"caseSensitive"`
	Alias         string               `json:"alias,omitempty"`
	DocValue      bool                 `json:"doc_value"`
	Chn           bool                 `json:"chn"`
	JSONKeys      map[string]KeyConfig `json:"json_keys,omitempty"`
	IndexAll      bool                 `json:"index_all,omitempty"`
	MaxDepth      int                  `json:"max_depth,omitempty"`
}

// DefaultTokens returns the token set the console and SDKs use by default
// (docs/log-service-api.md §5): text is split on these characters before matching.
func DefaultTokens() []string {
	return []string{",", " ", "'", "\"", ";", "=", "(", ")", "[", "]", "{", "}", "?", "@", "&", "<", ">", "/", ":", "\n", "\t", "\r"}
}
