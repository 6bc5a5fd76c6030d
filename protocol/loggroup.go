// Package protocol is the Log Service wire format shared by sluice-agent,
// sluice-server and sluice-controller: the LogGroup protobuf messages, body
// compression, request signing and verification, and the service's error
// codes. See ../shared/reference/sls-api.md (sections 1-3) for the facts it
// implements.
package protocol

// LogContent is one key/value of a Log.
type LogContent struct {
	Key, Value string
}

// Log is one log event.
type Log struct {
	Time      uint32 // unix seconds
	TimeNs    uint32 // nanoseconds within Time; meaningful when HasTimeNs
	HasTimeNs bool
	Contents  []LogContent
}

// LogTag is a LogGroup-level tag (shown as __tag__:<Key> in queries).
type LogTag struct {
	Key, Value string
}

// LogGroup is a batch of logs that share topic, source and tags.
//
// When filled by a decoder, strings may alias the decoded buffer (see the
// decoder's documentation) and are valid only while that buffer is.
type LogGroup struct {
	Logs        []Log
	Category    string
	Topic       string
	Source      string
	MachineUUID string
	LogTags     []LogTag
}
