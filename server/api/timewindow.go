package api

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicelog/sluice/protocol"
)

// The PutLogs time window. The Log Service takes logs whose time lies
// within [now - 7 days, now + 15 min] (docs/log-service-api.md §1, InvalidTimestamp
// among PutLogs's 400s); it does not document storing others at the
// receive time, and rewriting a log's time would silently change the data,
// so Sluice refuses the whole request with InvalidTimestamp naming the
// first log out of the window. The client keeps the data (sluice-agent
// dead-letters such a group), and the refusal is counted. The past bound
// is the logstore's retention (its ttl, whole days as the store drops
// them), not 7 days: Sluice keeps what the ttl says. A request may also
// span at most MaxWriteDays distinct days: the store writes a segment per
// day, so 20,000 logs on 20,000 days had made 20,000 segments.

const (
	// DefaultMaxFutureSkew is how far ahead of the server's clock a log's
	// time may be (the Log Service's 15 minutes).
	DefaultMaxFutureSkew = 15 * time.Minute
	// DefaultMaxWriteDays caps the distinct days of one PutLogs.
	DefaultMaxWriteDays = 32
	// keepForeverTTL: a ttl of this many days keeps data forever (no past
	// bound).
	keepForeverTTL = 3650
)

// windowMetrics count logs of refused PutLogs requests by reason.
type windowMetrics struct {
	refusedLogs *prometheus.CounterVec
}

func newWindowMetrics() windowMetrics {
	return windowMetrics{refusedLogs: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_api_out_of_window_logs_total",
		Help: "Logs of PutLogs requests refused with InvalidTimestamp, by reason: too_old (before the logstore's ttl), too_new (more than the allowed skew ahead), too_many_days (the request spans too many days). The whole request is refused; the client keeps the data.",
	}, []string{"reason"})}
}

// checkLogTimes refuses groups when a log is outside the logstore's time
// window at now, or the logs span more than a.cfg.MaxWriteDays days.
func (a *API) checkLogTimes(groups []protocol.LogGroup, logstore string, ttlDays int, now time.Time) error {
	latest := now.Add(a.cfg.MaxFutureSkew).Unix()
	var earliest int64 = -1 << 62
	if ttlDays > 0 && ttlDays < keepForeverTTL {
		// The store keeps whole UTC days: dayOf(now) - ttl + 1 onwards.
		earliest = (now.Unix()/86400 - int64(ttlDays) + 1) * 86400
	}
	var days [8]int64
	seen := days[:0]
	logs := 0
	for gi := range groups {
		logs += len(groups[gi].Logs)
	}
	for gi := range groups {
		for li := range groups[gi].Logs {
			t := int64(groups[gi].Logs[li].Time)
			switch {
			case t > latest:
				a.window.refusedLogs.WithLabelValues("too_new").Add(float64(logs))
				return protocol.Errorf(protocol.CodeInvalidTimestamp,
					"log %d of group %d has __time__ %d (%s), more than %s ahead of the server's time %s: fix the client's clock or the log times (the server's --max-log-future-skew); nothing of this request was stored",
					li, gi, t, fmtTime(t), a.cfg.MaxFutureSkew, now.UTC().Format(time.RFC3339))
			case t < earliest:
				a.window.refusedLogs.WithLabelValues("too_old").Add(float64(logs))
				return protocol.Errorf(protocol.CodeInvalidTimestamp,
					"log %d of group %d has __time__ %d (%s), before %s, the first day logstore %q keeps (ttl %d days): retention would drop it; nothing of this request was stored",
					li, gi, t, fmtTime(t), time.Unix(earliest, 0).UTC().Format(time.DateOnly), logstore, ttlDays)
			}
			day := t / 86400
			if len(seen) > 0 && seen[len(seen)-1] == day {
				continue // logs of a group are nearly always of one day
			}
			known := false
			for _, d := range seen {
				if d == day {
					known = true
					break
				}
			}
			if !known {
				seen = append(seen, day)
				if len(seen) > a.cfg.MaxWriteDays {
					a.window.refusedLogs.WithLabelValues("too_many_days").Add(float64(logs))
					return protocol.Errorf(protocol.CodeInvalidTimestamp,
						"the logs of this request span more than %d distinct days (UTC): send the logs of fewer days per request (each day is stored apart); nothing of this request was stored",
						a.cfg.MaxWriteDays)
				}
			}
		}
	}
	return nil
}

func fmtTime(unix int64) string { return time.Unix(unix, 0).UTC().Format(time.RFC3339) }
