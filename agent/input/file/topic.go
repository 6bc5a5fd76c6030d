package file

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// topic computes a file's topic and path tags from topicFormat.
type topic struct {
	fixed string         // none, group_topic, customized://
	re    *regexp.Regexp // path regex, nil otherwise
	keys  []string       // tag key of each capture group

	mu        sync.Mutex
	matched   int    // paths the regex matched
	unmatched int    // paths it did not
	example   string // the last path it did not match
}

func newTopic(format, groupTopic string) (*topic, error) {
	switch {
	case format == "" || format == "none":
		return &topic{}, nil
	case format == "group_topic":
		return &topic{fixed: groupTopic}, nil
	case strings.HasPrefix(format, "customized://"):
		return &topic{fixed: strings.TrimPrefix(format, "customized://")}, nil
	}
	re, err := regexp.Compile(`^(?:` + format + `)$`)
	if err != nil {
		return nil, fmt.Errorf("%q is neither none, group_topic, customized://TOPIC nor a valid path regular expression: %w", format, err)
	}
	if re.NumSubexp() == 0 {
		return nil, fmt.Errorf("path regular expression %q has no capture group: wrap the part that names the topic in (...)", format)
	}
	t := &topic{re: re}
	for i, name := range re.SubexpNames()[1:] {
		if name == "" {
			name = "__topic_" + strconv.Itoa(i+1) + "__"
		}
		t.keys = append(t.keys, name)
	}
	return t, nil
}

// forPath returns the topic and tags for path, as Logtail computes them
// from a path regex (matched against the whole path): with one capture
// group the topic is its value, and a named group is also a tag; with
// several, the topic is their values joined with "_", and every group is a
// tag — a named group under its name, an unnamed one as __topic_N__. A path
// the regex does not match gets an empty topic and no tags (and is counted:
// see unmatchedPaths).
func (t *topic) forPath(path string) (string, [][2]string) {
	if t.re == nil {
		return t.fixed, nil
	}
	m := t.re.FindStringSubmatch(path)
	t.mu.Lock()
	if m == nil {
		t.unmatched++
		t.example = path
	} else {
		t.matched++
	}
	t.mu.Unlock()
	if m == nil {
		return "", nil
	}
	values := m[1:]
	if len(values) == 1 {
		if strings.HasPrefix(t.keys[0], "__topic_") {
			return values[0], nil
		}
		return values[0], [][2]string{{t.keys[0], values[0]}}
	}
	tags := make([][2]string, len(values))
	for i, v := range values {
		tags[i] = [2]string{t.keys[i], v}
	}
	return strings.Join(values, "_"), tags
}

// unmatchedPaths reports how many collected files the path regex matched
// and did not, with the last one it did not match.
func (t *topic) unmatchedPaths() (matched, unmatched int, example string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.matched, t.unmatched, t.example
}

// TopicWarning explains a topicFormat path regex that did not match the
// files collected ("" when it matched them all, or is not a regex): those
// files' logs have no topic and no path tags, which is easy to miss.
func (in *Input) TopicWarning() string {
	matched, unmatched, example := in.topic.unmatchedPaths()
	switch {
	case unmatched == 0:
		return ""
	case matched == 0:
		return fmt.Sprintf("topicFormat matches none of the %d files collected (e.g. %s): their logs get no topic and no path tags; the regex must match the whole path as this agent sees it", unmatched, example)
	}
	return fmt.Sprintf("topicFormat does not match %d of the %d files collected (e.g. %s): those logs get no topic and no path tags", unmatched, matched+unmatched, example)
}
