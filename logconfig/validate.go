package logconfig

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"regexp"
	"regexp/syntax"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// ValidationError is one problem with a config: which config, the JSON key
// path (inputDetail.filterRegex[1]) and a message that ends with the fix.
// The JSON tags let the server return a list of them and the console show
// each beside its field.
type ValidationError struct {
	Config  string `json:"config"`
	Path    string `json:"path"`
	Message string `json:"message"`
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("config %q: %s: %s", e.Config, e.Path, e.Message)
}

// ValidationErrors flattens an error returned by Parse, Validate or
// LoadInstance (possibly joined or wrapped) into its ValidationErrors, in
// order. Other errors in the tree are skipped.
func ValidationErrors(err error) []*ValidationError {
	var out []*ValidationError
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if ve, ok := err.(*ValidationError); ok {
			out = append(out, ve)
			return
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}

// MaxMaxDepth bounds inputDetail.maxDepth, as the Logtail console does.
const MaxMaxDepth = 1000

// maxConfigNameLen is the Log Service limit on configName.
const maxConfigNameLen = 128

type problems struct {
	config string
	errs   []error
}

func (p *problems) add(path, format string, args ...any) {
	p.errs = append(p.errs, &ValidationError{Config: p.config, Path: path, Message: fmt.Sprintf(format, args...)})
}

// regex records a problem when expr does not compile and returns the
// compiled expression (nil on error).
func (p *problems) regex(path, expr string) *regexp.Regexp {
	if msg := regexProblem(expr); msg != "" {
		p.add(path, "%s", msg)
		return nil
	}
	re, err := regexp.Compile(expr)
	if err != nil { // unreachable once syntax.Parse succeeded; kept for safety
		p.add(path, "invalid regular expression %s: %v", quote(expr), err)
		return nil
	}
	return re
}

// Validate checks c and returns every problem found, joined; each is a
// *ValidationError (see ValidationErrors). Call ApplyDefaults first if the
// config came from a user: Validate judges the config as it stands.
func (c *Config) Validate() error {
	p := &problems{config: c.ConfigName}
	c.validateTop(p)
	d := &c.InputDetail
	switch c.InputType {
	case InputTypeFile:
		d.validateFile(p)
	case InputTypePlugin:
		d.validatePlugin(p, true)
	}
	d.validateCommon(p)
	return errors.Join(p.errs...)
}

func (c *Config) validateTop(p *problems) {
	switch n := c.ConfigName; {
	case n == "":
		p.add("configName", "is empty: name the config (letters, digits, '-', '_', '.'; at most %d characters)", maxConfigNameLen)
	case len(n) > maxConfigNameLen:
		p.add("configName", "is %d characters long: use at most %d", len(n), maxConfigNameLen)
	default:
		if i := strings.IndexFunc(n, func(r rune) bool {
			return !(r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) || r == '-' || r == '_' || r == '.')
		}); i >= 0 {
			p.add("configName", "contains %q: use only letters, digits, '-', '_' and '.'", n[i:i+1])
		}
	}
	switch c.InputType {
	case InputTypeFile, InputTypePlugin:
	case "":
		p.add("inputType", "is empty: set %q (files) or %q (plugin inputs such as container stdout)", InputTypeFile, InputTypePlugin)
	case "syslog", "streamlog":
		p.add("inputType", "%q is not supported by Sluice: use %q or %q", c.InputType, InputTypeFile, InputTypePlugin)
	default:
		p.add("inputType", "unknown input type %q: use %q or %q", c.InputType, InputTypeFile, InputTypePlugin)
	}
	if c.OutputType != OutputTypeLogService {
		p.add("outputType", "unknown output type %q: use %q", c.OutputType, OutputTypeLogService)
	}
	if c.OutputDetail.ProjectName == "" {
		p.add("outputDetail.projectName", "is empty: name the project the logs go to")
	}
	if c.OutputDetail.LogstoreName == "" {
		p.add("outputDetail.logstoreName", "is empty: name the logstore the logs go to")
	}
}

func (d *InputDetail) validateFile(p *problems) {
	const pre = "inputDetail."
	switch d.LogType {
	case LogTypeRegex, LogTypeJSON, LogTypeDelimiter, LogTypeApsara:
	case "":
		p.add(pre+"logType", "is empty: set one of %s", strings.Join(LogTypes(), ", "))
	default:
		p.add(pre+"logType", "unknown log type %q: use one of %s", d.LogType, strings.Join(LogTypes(), ", "))
	}
	switch {
	case d.LogPath == "":
		p.add(pre+"logPath", "is empty: set the directory that holds the log files, e.g. /var/log/nginx")
	case !filepath.IsAbs(d.LogPath):
		p.add(pre+"logPath", "%q is a relative path: use an absolute directory, e.g. /%s", d.LogPath, strings.TrimPrefix(d.LogPath, "./"))
	default:
		if _, err := path.Match(d.LogPath, ""); err != nil {
			p.add(pre+"logPath", "%q is not a valid glob: close every [ ] bracket or escape it with \\", d.LogPath)
		}
	}
	switch {
	case d.FilePattern == "":
		p.add(pre+"filePattern", "is empty: set a glob on the file name, e.g. *.log")
	case strings.Contains(d.FilePattern, "/"):
		p.add(pre+"filePattern", "%q contains '/': filePattern matches file names only; put the directory in logPath", d.FilePattern)
	default:
		if _, err := path.Match(d.FilePattern, ""); err != nil {
			p.add(pre+"filePattern", "%q is not a valid glob: close every [ ] bracket or escape it with \\", d.FilePattern)
		}
	}
	if d.MaxDepth != nil && (*d.MaxDepth < 0 || *d.MaxDepth > MaxMaxDepth) {
		p.add(pre+"maxDepth", "%d is out of range: use 0 (logPath only) to %d", *d.MaxDepth, MaxMaxDepth)
	}
	if d.PreserveDepth < 0 {
		p.add(pre+"preserveDepth", "%d is negative: use 0 or more", d.PreserveDepth)
	}
	if d.DelaySkipBytes < 0 {
		p.add(pre+"delaySkipBytes", "%d is negative: use 0 (never skip) or a byte count", d.DelaySkipBytes)
	}
	switch tf := d.TopicFormat; {
	case tf == "", tf == TopicFormatNone, tf == TopicFormatGroupTopic:
	case strings.HasPrefix(tf, TopicFormatCustomizedPrefix):
		if tf == TopicFormatCustomizedPrefix {
			p.add(pre+"topicFormat", "customized:// has no topic: write the topic after it, e.g. customized://nginx")
		}
	default:
		p.regex(pre+"topicFormat", tf)
	}
	switch d.FileEncoding {
	case "", EncodingUTF8, EncodingGBK:
	default:
		p.add(pre+"fileEncoding", "unknown encoding %q: use %q or %q", d.FileEncoding, EncodingUTF8, EncodingGBK)
	}
	if msg := timeFormatProblem(d.TimeFormat); msg != "" {
		p.add(pre+"timeFormat", "%s", msg)
	}
	if d.LogBeginRegex != "" {
		p.regex(pre+"logBeginRegex", d.LogBeginRegex)
	}
	switch d.LogType {
	case LogTypeRegex:
		d.validateRegexKeys(p)
	case LogTypeDelimiter:
		d.validateDelimiter(p)
	}
	if (d.LogType == LogTypeJSON || d.LogType == LogTypeDelimiter) && d.TimeFormat != "" && d.TimeKey == "" {
		p.add(pre+"timeKey", "is empty but timeFormat is set: name the field that holds the time, or clear timeFormat to use the collection time")
	}
	for _, sel := range []struct {
		name string
		m    map[string]string
	}{
		{"dockerIncludeLabel", d.DockerIncludeLabel},
		{"dockerExcludeLabel", d.DockerExcludeLabel},
		{"dockerIncludeEnv", d.DockerIncludeEnv},
		{"dockerExcludeEnv", d.DockerExcludeEnv},
	} {
		validateSelectorMap(p, pre+sel.name, sel.m)
	}
	if d.Advanced != nil {
		d.validateAdvanced(p)
	}
	if len(d.Plugin) > 0 {
		d.validatePlugin(p, false)
	}
}

// validateSelectorMap checks label/env selector values: ^…$ means a regular
// expression.
func validateSelectorMap(p *problems, at string, m map[string]string) {
	for _, k := range sortedKeys(m) {
		if v := m[k]; strings.HasPrefix(v, "^") && strings.HasSuffix(v, "$") {
			p.regex(at+"."+k, v)
		}
	}
}

func (d *InputDetail) validateRegexKeys(p *problems) {
	const pre = "inputDetail."
	var re *regexp.Regexp
	if d.Regex != "" {
		re = p.regex(pre+"regex", d.Regex)
	}
	validateKeyNames(p, pre+"key", d.Key)
	if re != nil && len(d.Key) > 0 && re.NumSubexp() != len(d.Key) {
		p.add(pre+"key", "has %s but inputDetail.regex has %s: list one key per group", plural(len(d.Key), "name"), plural(re.NumSubexp(), "capture group"))
	}
	if re != nil && len(d.Key) == 0 && d.Regex != "" {
		p.add(pre+"key", "is empty but inputDetail.regex has %s: list one key per group", plural(re.NumSubexp(), "capture group"))
	}
}

func (d *InputDetail) validateDelimiter(p *problems) {
	const pre = "inputDetail."
	if d.Separator == "" {
		p.add(pre+"separator", "is empty: set the character between fields, e.g. \",\" or \"\\t\"")
	}
	if d.Quote != "" && len(d.Quote) != 1 {
		p.add(pre+"quote", "%q is not a single character: use one character such as \"\\\"\"", d.Quote)
	}
	if d.Quote != "" && d.Quote == d.Separator {
		p.add(pre+"quote", "is the same as separator %q: use a different quote character", d.Separator)
	}
	if len(d.Key) == 0 {
		p.add(pre+"key", "is empty: list one name per delimited column")
	}
	validateKeyNames(p, pre+"key", d.Key)
	if d.TimeKey != "" && len(d.Key) > 0 && !contains(d.Key, d.TimeKey) {
		p.add(pre+"timeKey", "%q is not one of inputDetail.key: use one of the column names", d.TimeKey)
	}
}

func validateKeyNames(p *problems, at string, keys []string) {
	seen := make(map[string]int, len(keys))
	for i, k := range keys {
		if k == "" {
			p.add(fmt.Sprintf("%s[%d]", at, i), "is empty: name every field")
			continue
		}
		if j, dup := seen[k]; dup {
			p.add(fmt.Sprintf("%s[%d]", at, i), "%q repeats %s[%d]: give every field its own name", k, at, j)
			continue
		}
		seen[k] = i
	}
}

func (d *InputDetail) validateAdvanced(p *problems) {
	const pre = "inputDetail.advanced."
	a := d.Advanced
	if a.TailSizeKB < 0 {
		p.add(pre+"tail_size_kb", "%d is negative: use a size in KiB (default 1024)", a.TailSizeKB)
	}
	if b := a.Blacklist; b != nil {
		for i, g := range b.DirBlacklist {
			at := fmt.Sprintf("%sblacklist.dir_blacklist[%d]", pre, i)
			if !filepath.IsAbs(g) {
				p.add(at, "%q is not absolute: list directories as absolute paths (globs allowed), e.g. /var/log/tmp", g)
			} else if _, err := path.Match(g, ""); err != nil {
				p.add(at, "%q is not a valid glob: close every [ ] bracket or escape it with \\", g)
			}
		}
		for i, g := range b.FilenameBlacklist {
			at := fmt.Sprintf("%sblacklist.filename_blacklist[%d]", pre, i)
			if strings.Contains(g, "/") {
				p.add(at, "%q contains '/': list file names only; use filepath_blacklist for paths", g)
			} else if _, err := path.Match(g, ""); err != nil {
				p.add(at, "%q is not a valid glob: close every [ ] bracket or escape it with \\", g)
			}
		}
		for i, g := range b.FilepathBlacklist {
			at := fmt.Sprintf("%sblacklist.filepath_blacklist[%d]", pre, i)
			if !filepath.IsAbs(g) {
				p.add(at, "%q is not absolute: list file paths as absolute paths (globs allowed), e.g. /var/log/*.tmp", g)
			} else if _, err := path.Match(g, ""); err != nil {
				p.add(at, "%q is not a valid glob: close every [ ] bracket or escape it with \\", g)
			}
		}
	}
	if k := a.K8s; k != nil {
		for _, f := range []struct{ name, v string }{
			{"K8sNamespaceRegex", k.K8sNamespaceRegex},
			{"K8sPodRegex", k.K8sPodRegex},
			{"K8sContainerRegex", k.K8sContainerRegex},
		} {
			if f.v != "" {
				p.regex(pre+"k8s."+f.name, f.v)
			}
		}
		validateSelectorMap(p, pre+"k8s.IncludeK8sLabel", k.IncludeK8sLabel)
		validateSelectorMap(p, pre+"k8s.ExcludeK8sLabel", k.ExcludeK8sLabel)
	}
}

func (d *InputDetail) validatePlugin(p *problems, isInput bool) {
	const at = "inputDetail.plugin"
	if len(d.Plugin) == 0 {
		if isInput {
			p.add(at, "is empty: a plugin config needs {\"inputs\": [{\"type\": \"service_docker_stdout\", \"detail\": {...}}]}")
		}
		return
	}
	pl, err := d.PluginPipeline()
	if err != nil {
		p.add(at, "is not a plugin pipeline object: %v: write {\"inputs\": [...], \"processors\": [...]}", unwrapJSON(err))
		return
	}
	if pl == nil {
		pl = &Plugin{}
	}
	if isInput && len(pl.Inputs) == 0 {
		p.add(at+".inputs", "is empty: add an input, e.g. {\"type\": \"service_docker_stdout\", \"detail\": {}}")
	}
	if isInput && d.LogType != "" {
		p.add("inputDetail.logType", "%q is set on a plugin config: remove it, or use inputType \"file\"", d.LogType)
	}
	for _, list := range []struct {
		name  string
		items []PluginItem
	}{{"inputs", pl.Inputs}, {"processors", pl.Processors}, {"aggregators", pl.Aggregators}, {"flushers", pl.Flushers}} {
		for i, it := range list.items {
			itAt := fmt.Sprintf("%s.%s[%d]", at, list.name, i)
			if it.Type == "" {
				p.add(itAt+".type", "is empty: name the plugin type, e.g. service_docker_stdout")
				continue
			}
			if it.Type == PluginInputDockerStdout {
				ds, err := ParseDockerStdout(it.Detail)
				if err != nil {
					p.add(itAt+".detail", "%v: fix the field types", unwrapJSON(err))
					continue
				}
				for _, f := range []struct{ name, v string }{
					{"K8sNamespaceRegex", ds.K8sNamespaceRegex},
					{"K8sPodRegex", ds.K8sPodRegex},
					{"K8sContainerRegex", ds.K8sContainerRegex},
					{"BeginLineRegex", ds.BeginLineRegex},
				} {
					if f.v != "" {
						p.regex(itAt+".detail."+f.name, f.v)
					}
				}
			}
		}
	}
}

func (d *InputDetail) validateCommon(p *problems) {
	const pre = "inputDetail."
	if len(d.FilterKey) != len(d.FilterRegex) {
		p.add(pre+"filterRegex", "has %s but inputDetail.filterKey has %s: give exactly one regex per key", plural(len(d.FilterRegex), "entry"), plural(len(d.FilterKey), "entry"))
	}
	for i, k := range d.FilterKey {
		if k == "" {
			p.add(fmt.Sprintf("%sfilterKey[%d]", pre, i), "is empty: name the field the regex is matched against")
		}
	}
	for i, r := range d.FilterRegex {
		p.regex(fmt.Sprintf("%sfilterRegex[%d]", pre, i), r)
	}
	switch d.MergeType {
	case "", MergeTypeTopic, MergeTypeLogstore:
	default:
		p.add(pre+"mergeType", "unknown merge type %q: use %q or %q", d.MergeType, MergeTypeTopic, MergeTypeLogstore)
	}
	if d.MaxSendRate != nil && *d.MaxSendRate < -1 {
		p.add(pre+"maxSendRate", "%d is invalid: use -1 (no limit) or bytes per second", *d.MaxSendRate)
	}
	for i, sk := range d.SensitiveKeys {
		at := fmt.Sprintf("%ssensitive_keys[%d]", pre, i)
		if sk.Key == "" {
			p.add(at+".key", "is empty: name the field to mask")
		}
		switch sk.Type {
		case SensitiveTypeConst, SensitiveTypeMD5:
		default:
			p.add(at+".type", "unknown type %q: use %q (replace with const) or %q (replace with its MD5)", sk.Type, SensitiveTypeConst, SensitiveTypeMD5)
		}
		if sk.RegexBegin == "" {
			p.add(at+".regex_begin", "is empty: set the regex that precedes the sensitive part, e.g. 'password':'")
		} else {
			p.regex(at+".regex_begin", sk.RegexBegin)
		}
		if sk.RegexContent == "" {
			p.add(at+".regex_content", "is empty: set the regex of the sensitive part, e.g. [^']*")
		} else {
			p.regex(at+".regex_content", sk.RegexContent)
		}
	}
	if d.LogTimezone != "" && !validTimezone(d.LogTimezone) {
		p.add(pre+"logTimezone", "%q is not GMT+HH:MM or GMT-HH:MM: write e.g. GMT+08:00", d.LogTimezone)
	}
}

// validTimezone accepts the Logtail spelling GMT+08:00 / GMT-03:30.
func validTimezone(s string) bool {
	rest, ok := strings.CutPrefix(s, "GMT")
	if !ok || len(rest) != 6 || (rest[0] != '+' && rest[0] != '-') || rest[3] != ':' {
		return false
	}
	h, err1 := strconv.Atoi(rest[1:3])
	m, err2 := strconv.Atoi(rest[4:6])
	return err1 == nil && err2 == nil && h <= 14 && m < 60
}

// regexProblem explains why expr is not a valid (RE2/Go) regular expression,
// or returns "".
func regexProblem(expr string) string {
	_, err := syntax.Parse(expr, syntax.Perl)
	if err == nil {
		return ""
	}
	var se *syntax.Error
	if !errors.As(err, &se) {
		return fmt.Sprintf("invalid regular expression %s: %v", quote(expr), err)
	}
	msg := fmt.Sprintf("invalid regular expression %s: %s", quote(expr), se.Code)
	if se.Expr != "" && se.Expr != expr && se.Code != syntax.ErrMissingParen && se.Code != syntax.ErrMissingBracket {
		msg += fmt.Sprintf(" at %s", quote(se.Expr))
	}
	return msg + ": " + regexFix(se.Code)
}

func regexFix(code syntax.ErrorCode) string {
	switch code {
	case syntax.ErrMissingParen:
		return "add the closing parenthesis"
	case syntax.ErrUnexpectedParen:
		return `remove the extra ")" or escape it as \)`
	case syntax.ErrMissingBracket:
		return `add the closing "]" or escape the "[" as \[`
	case syntax.ErrInvalidEscape:
		return `remove the backslash or double it (\\) to match a literal backslash`
	case syntax.ErrTrailingBackslash:
		return `double the final backslash (\\) to match a literal backslash`
	case syntax.ErrMissingRepeatArgument:
		return `put something before the *, + or ?, or escape it (\*)`
	case syntax.ErrInvalidRepeatOp:
		return `remove the doubled repetition operator or escape it (\*, \+, \?)`
	case syntax.ErrInvalidRepeatSize:
		return "use repetition counts of at most 1000 with min <= max"
	case syntax.ErrInvalidCharRange:
		return `write ranges low-high (a-z) or escape the "-" as \-`
	case syntax.ErrInvalidCharClass:
		return "use a character class RE2 knows, e.g. [[:alpha:]] or \\pL"
	case syntax.ErrInvalidNamedCapture:
		return "name groups with letters, digits and _: (?P<name>...)"
	case syntax.ErrInvalidPerlOp:
		return "RE2 has no lookahead, lookbehind or backreferences: rewrite without (?=, (?!, (?<=, (?<! and \\1"
	case syntax.ErrInvalidUTF8:
		return "write the expression in UTF-8"
	case syntax.ErrNestingDepth, syntax.ErrLarge:
		return "simplify the expression"
	}
	return "fix the expression"
}

// timeFormatProblem checks a strftime format cheaply: every % must be
// followed by a conversion Logtail knows. A format without any % (Java style
// yyyy-MM-dd) is the commonest mistake and gets its own hint.
func timeFormatProblem(f string) string {
	if f == "" {
		return ""
	}
	if !strings.Contains(f, "%") {
		return fmt.Sprintf("%q has no %% conversions: timeFormat uses strftime, e.g. %%Y-%%m-%%d %%H:%%M:%%S for 2006-01-02 15:04:05", f)
	}
	for i := 0; i < len(f); i++ {
		if f[i] != '%' {
			continue
		}
		i++
		if i < len(f) && (f[i] == 'E' || f[i] == 'O') { // POSIX modifiers
			i++
		}
		if i >= len(f) {
			return fmt.Sprintf("%q ends with a lone %%: write %%%% for a literal %%", f)
		}
		if !strings.ContainsRune("aAbBcCdDeFfgGhHIjklmMnpPrRsStTuUVwWxXyYzZ%q", rune(f[i])) {
			return fmt.Sprintf("%q has unknown conversion %%%c: use strftime conversions such as %%Y %%m %%d %%H %%M %%S %%z", f, f[i])
		}
	}
	return ""
}

// quote shows a user's expression as they wrote it, in double quotes,
// escaping only when it holds quotes or unprintable characters.
func quote(s string) string {
	for _, r := range s {
		if r == '"' || !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return `"` + s + `"`
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	switch {
	case strings.HasSuffix(noun, "y"):
		return fmt.Sprintf("%d %sies", n, strings.TrimSuffix(noun, "y"))
	default:
		return fmt.Sprintf("%d %ss", n, noun)
	}
}

func unwrapJSON(err error) error {
	if u := errors.Unwrap(err); u != nil {
		return u
	}
	return err
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Check runs every check a config can get without a server, so one pass
// lists every problem: JSON syntax (nothing else can be judged then);
// otherwise every value of the wrong JSON type, together with Validate
// over the rest (defaults applied first, as CreateConfig does). A
// mistyped key is left out of the validated config (encoding/json stops
// decoding an object at its first type error), and validation errors at
// such a key are not reported twice. warnings are those of Warnings.
func Check(data []byte) (errs, warnings []*ValidationError) {
	var doc any
	if err := json.Unmarshal(data, &doc); err != nil {
		return ValidationErrors(decodeError(configNameOf(data), err)), nil
	}
	var c Config
	typeErr := map[string]bool{}
	for range 100 { // each round drops one mistyped key
		c = Config{}
		b, _ := json.Marshal(doc) // re-encoding decoded JSON cannot fail
		err := json.Unmarshal(b, &c)
		var te *json.UnmarshalTypeError
		if err == nil || !errors.As(err, &te) {
			break
		}
		for _, e := range ValidationErrors(decodeError(configNameOf(data), err)) {
			if !typeErr[e.Path] {
				typeErr[e.Path] = true
				errs = append(errs, e)
			}
		}
		if !dropKey(doc, strings.Split(te.Field, ".")) {
			break
		}
	}
	c.ApplyDefaults()
	for _, e := range ValidationErrors(c.Validate()) {
		if !typeErr[e.Path] {
			errs = append(errs, e)
		}
	}
	return errs, c.Warnings()
}

// dropKey deletes the key at path from a decoded JSON document (objects
// only), reporting whether it was there.
func dropKey(doc any, path []string) bool {
	m, ok := doc.(map[string]any)
	if !ok || len(path) == 0 {
		return false
	}
	// encoding/json matches keys case-insensitively; so does this.
	for k, v := range m {
		if !strings.EqualFold(k, path[0]) {
			continue
		}
		if len(path) == 1 {
			delete(m, k)
			return true
		}
		return dropKey(v, path[1:])
	}
	return false
}
