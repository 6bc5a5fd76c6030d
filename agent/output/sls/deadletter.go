package sls

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sluicelog/sluice/internal/fsutil"
)

// deadLetter keeps a permanently rejected LogGroup: <name>.loggroup holds
// the encoded (uncompressed) LogGroup, <name>.error.json the error. Both
// are fsynced (and the directory) before it returns nil; failures are
// retried with backoff until ctx ends, because returning would drop data.
func (o *Output) deadLetter(ctx context.Context, raw []byte, logs int, packID string, cause error) error {
	var se *sendError
	code := "unknown"
	info := map[string]any{
		"time": o.now().UTC().Format(time.RFC3339Nano), "project": o.cfg.Project, "logstore": o.cfg.Logstore,
		"packId": packID, "logs": logs, "rawBytes": len(raw), "error": cause.Error(),
	}
	if errors.As(cause, &se) {
		code = string(se.code)
		info["status"], info["errorCode"], info["errorMessage"], info["requestId"] = se.status, se.code, se.message, se.requestID
	}
	name := fmt.Sprintf("%d-%s", o.now().UnixNano(), packID)
	meta, _ := json.MarshalIndent(info, "", "  ")
	for attempt := 1; ; attempt++ {
		err := writeDeadLetter(o.cfg.DeadLetterDir, name, raw, meta)
		if err == nil {
			break
		}
		o.log.Error("cannot write a rejected LogGroup to the dead-letter directory; retrying", "dir", o.cfg.DeadLetterDir, "err", err)
		if o.snd.backoff(ctx, attempt) != nil {
			return fmt.Errorf("sls output: rejected by the service (%v) and the dead-letter write failed: %w", cause, err)
		}
	}
	o.m.deadGroups.WithLabelValues(code).Inc()
	o.m.deadLogs.Add(float64(logs))
	o.log.Error("the service rejected a LogGroup permanently; kept in the dead-letter directory",
		"code", code, "logs", logs, "file", filepath.Join(o.cfg.DeadLetterDir, name+".loggroup"), "err", cause)
	return nil
}

func writeDeadLetter(dir, name string, raw, meta []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range []struct {
		suffix string
		data   []byte
	}{{".loggroup", raw}, {".error.json", meta}} {
		if err := fsutil.WriteFile(filepath.Join(dir, name+f.suffix), f.data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
