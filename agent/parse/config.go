package parse

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicelog/sluice/agent/parse/strptime"
	"github.com/sluicelog/sluice/agent/regexp/anchored"
)

// Log types (inputDetail.logType), plus Nginx for the console's NGINX mode
// and None for events kept as they are.
const (
	None      = ""
	Regex     = "common_reg_log"
	JSON      = "json_log"
	Delimiter = "delimiter_log"
	Apsara    = "apsara_log"
	Nginx     = "nginx"
)

// Reserved keys.
const (
	// DefaultSourceKey is the field inputs put the raw event in.
	DefaultSourceKey = "content"
	// RawLogKey holds an event that failed to parse when DiscardUnmatch is
	// false (Logtail's legacy unmatched key).
	RawLogKey = "__raw_log__"
	// RawKey holds the raw event next to the parsed fields when
	// EnableRawLog is set.
	RawKey = "__raw__"
)

// Config is the parsing part of one collection config. The runtime fills it
// from inputDetail with the SDK defaults applied; note that the zero value
// of the booleans is not always the SDK default (discardUnmatch and
// autoExtend default to true there).
type Config struct {
	// Name is the collection config name, the `config` label of the metrics.
	Name string
	// LogType selects the parser: None, Regex, JSON, Delimiter, Apsara or
	// Nginx.
	LogType string
	// SourceKey is the field holding the raw event; "" means "content".
	SourceKey string

	// Regex (common_reg_log) must match the whole event; its capture groups
	// become the fields named by Keys, in order. For Nginx, an empty Regex
	// and Keys select the combined log format preset (NginxRegex,
	// NginxKeys).
	Regex string
	// Keys names the regex groups (common_reg_log, nginx) or the columns
	// (delimiter_log).
	Keys []string

	// Separator splits delimiter_log columns: one or more bytes; the
	// two-character text `\t` means a tab.
	Separator string
	// Quote encloses delimiter_log columns that contain the separator
	// (single-byte separators only); "" means `"`.
	Quote string
	// AutoExtend keeps columns beyond Keys as __column0__, __column1__, …
	// (numbered from the first extra column); without it they are dropped.
	AutoExtend bool
	// AcceptNoEnoughKeys keeps lines with fewer columns than Keys (the
	// missing keys are left out); without it such lines fail to parse.
	AcceptNoEnoughKeys bool

	// TimeKey is the field holding the event time; "" means "time" (the
	// key Logtail's console gives the time group of a regex), or
	// "time_local" for the NGINX preset.
	TimeKey string
	// TimeFormat (strftime) parses TimeKey into the event time; "" keeps
	// the time the event was read. Apsara logs carry their own time.
	TimeFormat string
	// AdjustTimezone interprets times without a zone in LogTimezone
	// (`GMT+08:00`) instead of Settings.Location.
	AdjustTimezone bool
	LogTimezone    string

	// DiscardUnmatch drops (and counts) events that fail to parse instead of
	// keeping them as a single RawLogKey field.
	DiscardUnmatch bool
	// EnableRawLog adds RawKey with the raw event to every event.
	EnableRawLog bool
}

// Settings carries what the stage needs from the agent.
type Settings struct {
	Logger     *slog.Logger          // nil: no logging
	Registerer prometheus.Registerer // nil: metrics not registered
	// Location interprets wall-clock times when AdjustTimezone is off; nil
	// means the machine's local zone, as Logtail does.
	Location *time.Location
	// Now gives the date for formats without one (`%b %d %H:%M:%S`); nil
	// means time.Now.
	Now func() time.Time
}

func (c *Config) sourceKey() string {
	if c.SourceKey == "" {
		return DefaultSourceKey
	}
	return c.SourceKey
}

func (c *Config) timeKey() string {
	switch {
	case c.TimeKey != "":
		return c.TimeKey
	case c.LogType == Nginx && c.Regex == "" && len(c.Keys) == 0:
		return "time_local"
	}
	return "time"
}

// Validate checks the config; errors name the inputDetail key and the fix.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch c.LogType {
	case None, JSON, Apsara:
	case Regex, Nginx:
		regex, keys := c.Regex, c.Keys
		if c.LogType == Nginx && regex == "" && len(keys) == 0 {
			regex, keys = NginxRegex, NginxKeys
		}
		if regex == "" {
			regex = "(.*)"
		}
		if len(keys) == 0 {
			keys = []string{DefaultSourceKey}
		}
		re, err := anchored.Compile(regex, regexOptions)
		if err != nil {
			add("inputDetail.regex: %w", err)
			break
		}
		if re.NumSubexp() != len(keys) {
			add("inputDetail.regex has %d capture groups but inputDetail.key names %d fields: give one key per group (use (?:…) for groups that are not fields)", re.NumSubexp(), len(keys))
		}
		for i, k := range keys {
			if k == "" {
				add("inputDetail.key[%d] is empty: name every field", i)
			}
		}
	case Delimiter:
		sep := separator(c.Separator)
		if sep == "" {
			add("inputDetail.separator is empty: set the column separator (e.g. \",\", \"|\", \"\\t\")")
		}
		if len(c.Quote) > 1 {
			add("inputDetail.quote %q must be a single character", c.Quote)
		} else if q := c.quote(); len(sep) == 1 && q == sep[0] {
			add("inputDetail.quote %q equals the separator", c.Quote)
		}
		if len(c.Keys) == 0 {
			add("inputDetail.key is empty: name the columns")
		}
		for i, k := range c.Keys {
			if k == "" {
				add("inputDetail.key[%d] is empty: name every column", i)
			}
		}
	default:
		add("inputDetail.logType %q is not supported: use common_reg_log, json_log, delimiter_log, apsara_log or nginx", c.LogType)
	}
	if c.TimeFormat != "" && c.LogType != Apsara {
		if _, err := strptime.Compile(c.TimeFormat); err != nil {
			add("inputDetail.timeFormat: %w", err)
		}
	}
	if c.AdjustTimezone {
		if _, err := strptime.ParseTimezone(c.LogTimezone); err != nil {
			add("inputDetail.logTimezone: %w", err)
		}
	}
	return errors.Join(errs...)
}

// regexOptions make parse regexes behave like Logtail's boost regexes:
// `.` matches line breaks of multi-line events, ^ and $ match at them.
var regexOptions = anchored.Options{Anchor: anchored.Full, DotNL: true, MultiLine: true}

func separator(s string) string {
	if s == `\t` {
		return "\t"
	}
	return s
}

func (c *Config) quote() byte {
	if c.Quote == "" {
		return '"'
	}
	return c.Quote[0]
}
