package mocklog

import (
	"bytes"
	"time"
)

// Container log formats: how a container runtime stores what the app wrote
// to stdout/stderr, one record per line (the inputs of DaemonSet and
// serverless-stdout collection).
const (
	// ContainerCRI is the CRI format kubelet/containerd write under
	// /var/log/pods: "2024-01-01T00:00:00.123456789Z stdout F message".
	// Lines longer than PartialBytes are split into P records ending with
	// an F record.
	ContainerCRI = "cri"
	// ContainerDockerJSON is Docker's json-file format:
	// {"log":"message\n","stream":"stdout","time":"..."}; a long line is
	// split into records whose "log" lacks the trailing \n, except the last.
	ContainerDockerJSON = "docker-json"
)

// DefaultPartialBytes is where kubelet and Docker split long lines.
const DefaultPartialBytes = 16 << 10

type wrapper func(dst, line []byte, c *clock, stream string, partial int) []byte

func wrapperFor(format string) wrapper {
	switch format {
	case ContainerCRI:
		return appendCRI
	case ContainerDockerJSON:
		return appendDockerJSON
	}
	return nil
}

// wrapEvent wraps every line of event (lines end with \n).
func wrapEvent(dst, event []byte, w wrapper, c *clock, stream string, partial int) []byte {
	for len(event) > 0 {
		i := bytes.IndexByte(event, '\n')
		line := event[:i]
		event = event[i+1:]
		dst = w(dst, line, c, stream, partial)
	}
	return dst
}

func appendCRI(dst, line []byte, c *clock, stream string, partial int) []byte {
	for {
		chunk, tag := line, byte('F')
		if len(chunk) > partial {
			chunk, tag = chunk[:partial], 'P'
		}
		dst = append(dst, c.rfc3339...)
		dst = append(dst, ' ')
		dst = append(dst, stream...)
		dst = append(dst, ' ', tag, ' ')
		dst = append(dst, chunk...)
		dst = append(dst, '\n')
		line = line[len(chunk):]
		if tag == 'F' {
			return dst
		}
	}
}

func appendDockerJSON(dst, line []byte, c *clock, stream string, partial int) []byte {
	for {
		chunk, last := line, true
		if len(chunk) > partial {
			chunk, last = chunk[:partial], false
		}
		dst = append(dst, `{"log":"`...)
		dst = appendJSONString(dst, chunk)
		if last {
			dst = append(dst, `\n`...)
		}
		dst = append(dst, `","stream":"`...)
		dst = append(dst, stream...)
		dst = append(dst, `","time":"`...)
		dst = append(dst, c.rfc3339...)
		dst = append(dst, "\"}\n"...)
		line = line[len(chunk):]
		if last {
			return dst
		}
	}
}

const hexDigits = "0123456789abcdef"

// appendJSONString escapes s for a JSON string the way Docker's json-file
// driver does (HTML characters too).
func appendJSONString(dst, s []byte) []byte {
	start := 0
	for i, b := range s {
		var esc string
		switch {
		case b == '"':
			esc = `\"`
		case b == '\\':
			esc = `\\`
		case b == '\n':
			esc = `\n`
		case b == '\r':
			esc = `\r`
		case b == '\t':
			esc = `\t`
		case b < 0x20 || b == '<' || b == '>' || b == '&':
		default:
			continue
		}
		dst = append(dst, s[start:i]...)
		if esc != "" {
			dst = append(dst, esc...)
		} else {
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
		}
		start = i + 1
	}
	return append(dst, s[start:]...)
}

func appendRFC3339Nano(dst []byte, t time.Time) []byte {
	return t.UTC().AppendFormat(dst, time.RFC3339Nano)
}
