package logconfig

// Defaults the aliyun-log-go-sdk fills in (AddNecessaryInputConfigField and
// the Init…InputDetail functions); the reference calls them the effective
// defaults, so a config created without the SDK behaves the same.
const (
	DefaultMaxDepth      = 100
	DefaultMaxSendRate   = -1
	DefaultLogBeginRegex = ".*"
	DefaultRegex         = "(.*)"
	DefaultKey           = "content"
	// DefaultQuote is U+0001: a character that never occurs, i.e. no quoting.
	DefaultQuote = "\u0001"
)

// ApplyDefaults fills every unset field that has a default, the way the SDK
// does before CreateConfig. After it, the pointer fields of InputDetail are
// non-nil. It infers inputType (file when logType is set, plugin when only
// plugin is) and sets outputType LogService when they are missing. Calling
// it twice changes nothing.
func (c *Config) ApplyDefaults() {
	d := &c.InputDetail
	if c.InputType == "" {
		switch {
		case d.LogType != "":
			c.InputType = InputTypeFile
		case len(d.Plugin) > 0:
			c.InputType = InputTypePlugin
		}
	}
	if c.OutputType == "" {
		c.OutputType = OutputTypeLogService
	}
	setDefault(&d.LocalStorage, true)
	setDefault(&d.EnableTag, true)
	setDefault(&d.MaxSendRate, DefaultMaxSendRate)
	if d.MergeType == "" {
		d.MergeType = MergeTypeTopic
	}
	// File-only defaults are filled for every config so the pointers are
	// never nil; the SDK adds them only when logType is present, which is
	// the same thing for any config that reads files.
	if d.FileEncoding == "" && c.InputType != InputTypePlugin {
		d.FileEncoding = EncodingUTF8
	}
	setDefault(&d.MaxDepth, DefaultMaxDepth)
	if d.TopicFormat == "" && c.InputType != InputTypePlugin {
		d.TopicFormat = TopicFormatNone
	}
	setDefault(&d.Preserve, true)
	setDefault(&d.DiscardUnmatch, true)
	setDefault(&d.AutoExtend, true)
	switch d.LogType {
	case LogTypeRegex:
		if d.LogBeginRegex == "" {
			d.LogBeginRegex = DefaultLogBeginRegex
		}
		if d.Regex == "" {
			d.Regex = DefaultRegex
		}
		if len(d.Key) == 0 {
			d.Key = []string{DefaultKey}
		}
	case LogTypeApsara:
		if d.LogBeginRegex == "" {
			d.LogBeginRegex = DefaultLogBeginRegex
		}
	case LogTypeDelimiter:
		if d.Quote == "" {
			d.Quote = DefaultQuote
		}
	}
}

func setDefault[T any](p **T, v T) {
	if *p == nil {
		*p = &v
	}
}
