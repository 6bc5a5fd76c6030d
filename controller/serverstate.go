package controller

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	sls "github.com/aliyun/aliyun-log-go-sdk"

	"github.com/sluicelog/sluice/logconfig"
)

// KubernetesIndexKeys are the fields the default index makes searchable
// and SQL-able besides full text: the tags and container fields Logtail's
// Kubernetes dashboards query.
var kubernetesIndexKeys = []string{
	"__tag__:__hostname__", "__tag__:__path__", "_container_ip_", "_container_name_",
	"_image_name_", "_namespace_", "_pod_name_", "_pod_uid_", "_source_",
}

// DefaultIndex is the index a new logstore gets: full text with the SDK's
// default tokens plus a text key (with doc_value, so SQL can group by it)
// for each Kubernetes field.
func DefaultIndex() sls.Index {
	idx := *sls.CreateDefaultIndex()
	idx.Keys = make(map[string]sls.IndexKey, len(kubernetesIndexKeys))
	for _, k := range kubernetesIndexKeys {
		idx.Keys[k] = sls.IndexKey{Token: idx.Line.Token, Type: "text", DocValue: true}
	}
	return idx
}

// sameConfig reports whether the server's copy of a config equals the
// desired one, ignoring server-set times and key order.
func sameConfig(current string, want []byte) (bool, error) {
	cur, err := logconfig.Parse([]byte(current))
	if err != nil {
		return false, err
	}
	cur.ApplyDefaults()
	cur.CreateTime, cur.LastModifyTime = 0, 0
	a, err := canonical(cur)
	if err != nil {
		return false, err
	}
	w, err := logconfig.Parse(want)
	if err != nil {
		return false, err
	}
	b, err := canonical(w)
	if err != nil {
		return false, err
	}
	return bytes.Equal(a, b), nil
}

// canonical encodes c with sorted keys at every level.
func canonical(c *logconfig.Config) ([]byte, error) {
	raw, err := logconfig.Marshal(c)
	if err != nil {
		return nil, err
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	return json.Marshal(v) // maps marshal with sorted keys
}

func isCode(err error, code string) bool {
	var se *sls.Error
	return errors.As(err, &se) && se.Code == code
}

// isNotExist reports a 404-style error: the thing is already gone.
func isNotExist(err error) bool {
	var se *sls.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code {
	case "ProjectNotExist", "ConfigNotExist", "MachineGroupNotExist", "LogStoreNotExist":
		return true
	}
	return se.HTTPCode == 404
}

// describe renders an error in one line: the SDK's Error() is indented JSON.
func describe(err error) string {
	var se *sls.Error
	if !errors.As(err, &se) {
		return err.Error()
	}
	one := fmt.Sprintf("%s (HTTP %d): %s", se.Code, se.HTTPCode, se.Message)
	if se.RequestID != "" {
		one += " [request " + se.RequestID + "]"
	}
	// Keep the context the wrappers added ("create logstore x: ...").
	msg := err.Error()
	if i := bytes.Index([]byte(msg), []byte(se.Error())); i > 0 {
		return msg[:i] + one
	}
	return one
}
