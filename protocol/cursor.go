package protocol

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
)

// Shard cursors: base64 (standard, padded) of a decimal int64, one per
// log group, consecutive within a shard (the Go SDK's GetPrevCursorTime
// decodes a cursor and subtracts one).

// EncodeCursor returns the wire form of a shard cursor.
func EncodeCursor(c int64) string {
	return base64.StdEncoding.EncodeToString(strconv.AppendInt(nil, c, 10))
}

// DecodeCursor parses a cursor's wire form.
func DecodeCursor(s string) (int64, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err == nil {
		var c int64
		if c, err = strconv.ParseInt(string(b), 10, 64); err == nil {
			return c, nil
		}
	}
	return 0, Errorf(CodeInvalidCursor, "cursor %q is not a cursor of this server (base64 of a decimal number): get one with GetCursor", s)
}

// Error codes of the shard, cursor and consumer-group APIs. Some keep the
// service's spelling ("Exsit"): the Go consumer library compares them.
const (
	CodeInvalidCursor             ErrorCode = "InvalidCursor"             // 400
	CodeShardNotExist             ErrorCode = "ShardNotExist"             // 400
	CodeConsumerGroupNotExist     ErrorCode = "ConsumerGroupNotExist"     // 404
	CodeConsumerGroupAlreadyExist ErrorCode = "ConsumerGroupAlreadyExist" // 400
	CodeConsumerNotExist          ErrorCode = "ConsumerNotExsit"          // 400
	CodeConsumerNotMatch          ErrorCode = "ConsumerNotMatch"          // 400
	CodeCheckpointShardNotExist   ErrorCode = "ShardNotExsit"             // 400, UpdateCheckpoint
)

// NotFound returns a 404 error with code: the object does not exist.
func NotFound(code ErrorCode, message string) *Error {
	return &Error{HTTPStatus: http.StatusNotFound, Code: code, Message: message}
}
