package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// ErrorCode is a Log Service error code, the errorCode of an error body.
type ErrorCode string

// Error codes and the HTTP status each is sent with (ErrorCode.HTTPStatus).
//
// The rule: clients retry 5xx (the Python CLI forever), so a permanent
// error — anything the same request would hit again — is NEVER 5xx. Only
// InternalServerError (a bug or an unexpected failure) and ServerBusy
// (overload: retry later) are.
const (
	// 400 Bad Request.
	CodePostBodyInvalid         ErrorCode = "PostBodyInvalid"
	CodeInvalidTimestamp        ErrorCode = "InvalidTimestamp"
	CodeInvalidEncoding         ErrorCode = "InvalidEncoding"
	CodeInvalidKey              ErrorCode = "InvalidKey"
	CodePostBodyTooLarge        ErrorCode = "PostBodyTooLarge"
	CodePostBodyUncompressError ErrorCode = "PostBodyUncompressError"
	CodeRequestTimeExpired      ErrorCode = "RequestTimeExpired"
	CodeInvalidHost             ErrorCode = "InvalidHost"
	CodeParameterInvalid        ErrorCode = "ParameterInvalid"
	CodeMissingBodyRawSize      ErrorCode = "MissingBodyRawSize"
	CodeInvalidBodyRawSize      ErrorCode = "InvalidBodyRawSize"
	CodeInvalidCompressType     ErrorCode = "InvalidCompressType"
	CodeMissingDate             ErrorCode = "MissingDate"
	CodeInvalidDateFormat       ErrorCode = "InvalidDateFormat"
	CodeMissingAPIVersion       ErrorCode = "MissingAPIVersion"
	CodeInvalidAPIVersion       ErrorCode = "InvalidAPIVersion"
	CodeLogStoreAlreadyExist    ErrorCode = "LogStoreAlreadyExist"
	CodeProjectAlreadyExist     ErrorCode = "ProjectAlreadyExist"
	CodeLogStoreInfoInvalid     ErrorCode = "LogStoreInfoInvalid"

	// 401 Unauthorized.
	CodeSignatureNotMatch ErrorCode = "SignatureNotMatch"
	CodeUnauthorized      ErrorCode = "Unauthorized"

	// 403 Forbidden. (The status of the Shard* codes is unconfirmed; 403
	// like their siblings.)
	CodeWriteQuotaExceed      ErrorCode = "WriteQuotaExceed"
	CodeReadQuotaExceed       ErrorCode = "ReadQuotaExceed"
	CodeShardWriteQuotaExceed ErrorCode = "ShardWriteQuotaExceed"
	CodeShardReadQuotaExceed  ErrorCode = "ShardReadQuotaExceed"

	// 404 Not Found. (IndexConfig/MachineGroup/Config: status unconfirmed.)
	CodeProjectNotExist      ErrorCode = "ProjectNotExist"
	CodeLogStoreNotExist     ErrorCode = "LogStoreNotExist"
	CodeIndexConfigNotExist  ErrorCode = "IndexConfigNotExist"
	CodeMachineGroupNotExist ErrorCode = "MachineGroupNotExist"
	CodeConfigNotExist       ErrorCode = "ConfigNotExist"

	// 5xx: only for failures that retrying can fix.
	CodeInternalServerError ErrorCode = "InternalServerError" // 500
	CodeServerBusy          ErrorCode = "ServerBusy"          // 503
)

// HTTPStatus is the status a response carrying c is sent with. Codes this
// package does not know are client errors (400): an unknown code must never
// turn into a retried 5xx.
func (c ErrorCode) HTTPStatus() int {
	switch c {
	case CodeSignatureNotMatch, CodeUnauthorized:
		return http.StatusUnauthorized
	case CodeWriteQuotaExceed, CodeReadQuotaExceed, CodeShardWriteQuotaExceed, CodeShardReadQuotaExceed:
		return http.StatusForbidden
	case CodeProjectNotExist, CodeLogStoreNotExist, CodeIndexConfigNotExist,
		CodeMachineGroupNotExist, CodeConfigNotExist:
		return http.StatusNotFound
	case CodeInternalServerError:
		return http.StatusInternalServerError
	case CodeServerBusy:
		return http.StatusServiceUnavailable
	}
	return http.StatusBadRequest
}

// Error is a Log Service error: what a server sends and what a client
// receives. Its JSON form is the error body,
// {"errorCode": "...", "errorMessage": "..."}.
type Error struct {
	HTTPStatus int
	Code       ErrorCode
	Message    string
	// Err is the underlying cause, for logs and errors.Is/As; it is not
	// sent to clients.
	Err error
}

// NewError returns an Error with code's HTTP status.
func NewError(code ErrorCode, message string) *Error {
	return &Error{HTTPStatus: code.HTTPStatus(), Code: code, Message: message}
}

// Errorf is NewError with a formatted message. A %w verb in format sets Err
// (the cause) as fmt.Errorf would.
func Errorf(code ErrorCode, format string, args ...any) *Error {
	err := fmt.Errorf(format, args...)
	return &Error{HTTPStatus: code.HTTPStatus(), Code: code, Message: err.Error(), Err: errors.Unwrap(err)}
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s (HTTP %d): %s", e.Code, e.HTTPStatus, e.Message)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error with the same Code, so callers can
// test errors.Is(err, protocol.NewError(protocol.CodeSignatureNotMatch, "")).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Temporary reports whether a client should retry the request (5xx).
func (e *Error) Temporary() bool { return e.HTTPStatus >= 500 }

type errorBody struct {
	Code    ErrorCode `json:"errorCode"`
	Message string    `json:"errorMessage"`
}

// MarshalJSON encodes the error body. Both keys are always present.
func (e *Error) MarshalJSON() ([]byte, error) {
	return json.Marshal(errorBody{Code: e.Code, Message: e.Message})
}

// UnmarshalJSON decodes an error body (HTTPStatus is left as it was).
func (e *Error) UnmarshalJSON(b []byte) error {
	var body errorBody
	if err := json.Unmarshal(b, &body); err != nil {
		return err
	}
	e.Code, e.Message = body.Code, body.Message
	return nil
}

// CodeOf returns the code of the first *Error in err's chain, or "" when
// there is none.
func CodeOf(err error) ErrorCode {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// AsError returns the first *Error in err's chain; any other non-nil error
// becomes an InternalServerError whose message hides the internal detail
// (the cause stays in Err for the server's log). It returns nil for nil.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{
		HTTPStatus: http.StatusInternalServerError,
		Code:       CodeInternalServerError,
		Message:    "internal server error",
		Err:        err,
	}
}

// WriteError sends err as a Log Service error response: the status, a JSON
// body with both errorCode and errorMessage, and x-log-requestid when
// requestID is non-empty. Non-*Error errors are sent as AsError describes.
func WriteError(w http.ResponseWriter, requestID string, err error) {
	e := AsError(err)
	if e == nil {
		e = NewError(CodeInternalServerError, "internal server error")
	}
	body, jerr := e.MarshalJSON()
	if jerr != nil { // unreachable: two strings always marshal
		body = []byte(`{"errorCode":"InternalServerError","errorMessage":"internal server error"}`)
	}
	h := w.Header()
	h.Set(HeaderContentType, ContentTypeJSON)
	if requestID != "" {
		h.Set(HeaderRequestID, requestID)
	}
	status := e.HTTPStatus
	if status == 0 {
		status = e.Code.HTTPStatus()
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
