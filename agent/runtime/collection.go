package runtime

import (
	"sort"

	"github.com/prometheus/client_golang/prometheus"
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
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
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
	sort.Slice(cs.Lagging, func(i, j int) bool { return cs.Lagging[i].Bytes > cs.Lagging[j].Bytes })
	if len(cs.Lagging) > 5 {
		cs.Lagging = cs.Lagging[:5]
	}
	return cs, nil
}
