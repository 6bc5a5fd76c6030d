package file

import (
	"fmt"
	"regexp"
	"strings"
)

// topic computes a file's topic and path tags from topicFormat.
type topic struct {
	fixed string         // none, group_topic, customized://
	re    *regexp.Regexp // path regex, nil otherwise
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
	return &topic{re: re}, nil
}

// forPath returns the topic and the named-group tags for path. The first
// capture group is the topic; every named group is also a tag. A path the
// regex does not match gets an empty topic and no tags.
func (t *topic) forPath(path string) (string, [][2]string) {
	if t.re == nil {
		return t.fixed, nil
	}
	m := t.re.FindStringSubmatch(path)
	if m == nil {
		return "", nil
	}
	var tags [][2]string
	for i, name := range t.re.SubexpNames() {
		if i > 0 && name != "" {
			tags = append(tags, [2]string{name, m[i]})
		}
	}
	return m[1], tags
}
