package supervisor

import (
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// CollectionStatus summarises how far behind collection is, from the
// components' own metrics, so `sluice-agent status` answers "is anything
// stuck or being lost?" without a Prometheus server.
type CollectionStatus struct {
	// LagBytes is what the watched files hold beyond what was read.
	LagBytes float64 `json:"lagBytes"`
	// Lagging lists the files furthest behind (at most 5).
	Lagging []FileLag `json:"lagging,omitempty"`
	// BufferPendingBytes is what waits in the disk buffer for the server.
	BufferPendingBytes float64 `json:"bufferPendingBytes"`
	// BufferFullWaits counts appends that waited for space: readers paused
	// (the files keep the data).
	BufferFullWaits float64 `json:"bufferFullWaits"`
	// LostBytes counts data known lost (corrupt buffer records, files gone
	// before they were read); it should stay 0.
	LostBytes float64 `json:"lostBytes"`
	// DeadLetteredLogs were rejected permanently by the server and kept in
	// the dead-letter directory.
	DeadLetteredLogs float64 `json:"deadLetteredLogs"`
	// Buffers are the disk buffers (one per logstore), by directory.
	Buffers []BufferStatus `json:"buffers,omitempty"`
}

// Disk buffer states.
const (
	// BufferOK: appends succeed (data may still be waiting for the
	// server: PendingBytes).
	BufferOK = "ok"
	// BufferFull: the agent's buffer_file_num files are used; appends wait
	// for delivered files to be deleted.
	BufferFull = "full"
	// BufferUnwritable: the disk refuses writes (full, I/O errors). New data
	// waits in memory and the inputs pause (their files keep the data)
	// until space is freed or the server takes the buffered data.
	BufferUnwritable = "unwritable"
)

// BufferStatus is one disk buffer.
type BufferStatus struct {
	Dir          string  `json:"dir"`
	State        string  `json:"state"`
	PendingBytes float64 `json:"pendingBytes"`
	Files        float64 `json:"files"`
	// WriteFailingSince is when the current run of failed writes began
	// (state unwritable).
	WriteFailingSince *time.Time `json:"writeFailingSince,omitempty"`
	// NoSpaceErrors and IOErrors count failed writes since start.
	NoSpaceErrors float64 `json:"noSpaceErrors,omitempty"`
	IOErrors      float64 `json:"ioErrors,omitempty"`
}

// label is the value of m's label name ("" when absent).
func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// FileLag is one file's unread bytes.
type FileLag struct {
	Path  string  `json:"path"`
	Bytes float64 `json:"bytes"`
}

// CentralStatus is the central-config connection as status reports it.
type CentralStatus struct {
	Server      string `json:"server"`
	LastSuccess string `json:"lastSuccess,omitempty"`
	LastError   string `json:"lastError,omitempty"`
}

// collectionStatus reads the figures from g. Missing metrics read as zero (a
// component that is not running has nothing behind).
func collectionStatus(g prometheus.Gatherer) (*CollectionStatus, error) {
	mfs, err := g.Gather()
	if err != nil {
		return nil, err
	}
	cs := &CollectionStatus{}
	buffers := map[string]*BufferStatus{}
	buf := func(m *dto.Metric) *BufferStatus {
		dir := label(m, "dir")
		b := buffers[dir]
		if b == nil {
			b = &BufferStatus{Dir: dir, State: BufferOK}
			buffers[dir] = b
		}
		return b
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			if strings.HasPrefix(mf.GetName(), "sluice_buffer_") && label(m, "dir") != "" {
				b := buf(m)
				switch mf.GetName() {
				case "sluice_buffer_pending_bytes":
					b.PendingBytes = v
				case "sluice_buffer_files":
					b.Files = v
				case "sluice_buffer_waiting_appends":
					if v > 0 && b.State == BufferOK {
						b.State = BufferFull
					}
				case "sluice_buffer_write_failing_since_seconds":
					if v > 0 {
						since := time.Unix(0, int64(v*1e9)).UTC()
						b.WriteFailingSince = &since
						b.State = BufferUnwritable
					}
				case "sluice_buffer_write_errors_total":
					if label(m, "reason") == "no_space" {
						b.NoSpaceErrors += v
					} else {
						b.IOErrors += v
					}
				}
			}
			switch mf.GetName() {
			case "sluice_file_lag_bytes":
				cs.LagBytes += v
				for _, l := range m.GetLabel() {
					if l.GetName() == "path" && v > 0 {
						cs.Lagging = append(cs.Lagging, FileLag{Path: l.GetValue(), Bytes: v})
					}
				}
			case "sluice_buffer_pending_bytes":
				cs.BufferPendingBytes += v
			case "sluice_buffer_full_waits_total":
				cs.BufferFullWaits += v
			case "sluice_buffer_corrupt_bytes_total", "sluice_file_lost_bytes_total":
				cs.LostBytes += v
			case "sluice_output_sls_dead_lettered_logs_total":
				cs.DeadLetteredLogs += v
			}
		}
	}
	for _, b := range buffers {
		cs.Buffers = append(cs.Buffers, *b)
	}
	sort.Slice(cs.Buffers, func(i, j int) bool { return cs.Buffers[i].Dir < cs.Buffers[j].Dir })
	sort.Slice(cs.Lagging, func(i, j int) bool { return cs.Lagging[i].Bytes > cs.Lagging[j].Bytes })
	if len(cs.Lagging) > 5 {
		cs.Lagging = cs.Lagging[:5]
	}
	return cs, nil
}
