package duckdb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The segment catalog: table sluice_segments lists every live segment
// file. A file is live once its row is committed (in the same transaction
// as the WAL position its rows came from), so a file without a row is a
// leftover of a load or compaction that did not commit, removed at Open.

const segmentsDDL = `CREATE TABLE IF NOT EXISTS sluice_segments (
	id BIGINT PRIMARY KEY, ls_id BIGINT, day INTEGER, rows BIGINT, bytes BIGINT,
	min_time BIGINT, max_time BIGINT, fields_json VARCHAR)`

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func insertSegment(ctx context.Context, tx execer, lsID int64, sg *segment) error {
	if _, err := tx.ExecContext(ctx, "INSERT INTO sluice_segments VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
		sg.id, lsID, sg.day, sg.rows, sg.bytes, sg.minTime, sg.maxTime, sg.fkey); err != nil {
		return fmt.Errorf("record segment %d: %w", sg.id, err)
	}
	return nil
}

func deleteSegments(ctx context.Context, tx execer, segs []*segment) error {
	if len(segs) == 0 {
		return nil
	}
	ids := make([]string, len(segs))
	for i, sg := range segs {
		ids[i] = strconv.FormatInt(sg.id, 10)
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM sluice_segments WHERE id IN ("+strings.Join(ids, ", ")+")"); err != nil {
		return fmt.Errorf("remove segments from the catalog: %w", err)
	}
	return nil
}

// removeSegments deletes segments of logstore lsID from the catalog and
// buries their files. Runs on the writer goroutine.
func (s *Store) removeSegments(ctx context.Context, c execer, lsID int64, segs []*segment) error {
	if err := deleteSegments(ctx, c, segs); err != nil {
		return err
	}
	for _, sg := range segs {
		s.bury(segmentPath(s.cfg.DataDir, lsID, sg.id))
	}
	return nil
}

func fieldsKey(fields []fieldColumn) string {
	if len(fields) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(fields) // cannot fail
	return string(b)
}

// addSegment publishes sg. Day slices are copied on change, so views
// holding the old slice keep a consistent list. Caller holds s.mu.
func (ls *logstore) addSegment(sg *segment) {
	ls.segs[sg.day] = append(slices.Clip(ls.segs[sg.day]), sg)
}

// replaceSegments removes old (all of one day) and adds sg, if not nil.
// Caller holds s.mu.
func (ls *logstore) replaceSegments(day int32, old []*segment, sg *segment) {
	keep := make([]*segment, 0, len(ls.segs[day]))
	for _, x := range ls.segs[day] {
		if !slices.Contains(old, x) {
			keep = append(keep, x)
		}
	}
	if sg != nil {
		keep = append(keep, sg)
	}
	if len(keep) == 0 {
		delete(ls.segs, day)
		return
	}
	ls.segs[day] = keep
}

// loadSegments reads the catalog into the logstores and removes segment
// files that are not in it.
func (s *Store) loadSegments(ctx context.Context, byID map[int64]*logstore) error {
	if _, err := s.db.ExecContext(ctx, segmentsDDL); err != nil {
		return fmt.Errorf("duckdb store: create segment catalog: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, "SELECT id, ls_id, day, rows, bytes, min_time, max_time, fields_json FROM sluice_segments")
	if err != nil {
		return fmt.Errorf("duckdb store: read segment catalog: %w", err)
	}
	defer rows.Close()
	live := map[string]bool{}
	for rows.Next() {
		sg := &segment{}
		var lsID int64
		if err := rows.Scan(&sg.id, &lsID, &sg.day, &sg.rows, &sg.bytes, &sg.minTime, &sg.maxTime, &sg.fkey); err != nil {
			return fmt.Errorf("duckdb store: read segment catalog: %w", err)
		}
		if err := json.Unmarshal([]byte(sg.fkey), &sg.fields); err != nil {
			return fmt.Errorf("duckdb store: segment %d columns: %w", sg.id, err)
		}
		s.nextSeg = max(s.nextSeg, sg.id)
		ls := byID[lsID]
		if ls == nil {
			continue // its logstore's drop did not finish: removed below
		}
		ls.addSegment(sg)
		live[segmentPath(s.cfg.DataDir, lsID, sg.id)] = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("duckdb store: read segment catalog: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, "DELETE FROM sluice_segments WHERE ls_id NOT IN (SELECT id FROM sluice_logstores)"); err != nil {
		return fmt.Errorf("duckdb store: clean segment catalog: %w", err)
	}
	removed := 0
	err = filepath.WalkDir(filepath.Join(s.cfg.DataDir, segmentsDir), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() || live[path] {
			return nil
		}
		removed++
		return os.Remove(path)
	})
	if err != nil {
		return fmt.Errorf("duckdb store: remove leftover segment files: %w", err)
	}
	if removed > 0 {
		s.log.Info("removed segment files of loads or compactions that did not commit", "files", removed)
	}
	return nil
}

// bury schedules files for removal once no query can still be reading
// them (a query binds its file list when it starts and may run for up to
// QueryTimeout). Runs on the writer goroutine.
func (s *Store) bury(paths ...string) {
	at := time.Now().Add(s.cfg.QueryTimeout + 5*time.Second)
	for _, p := range paths {
		s.graves = append(s.graves, grave{p, at})
	}
}

type grave struct {
	path string
	at   time.Time
}

// sweep removes buried files that are due (all of them when final).
func (s *Store) sweep(final bool) {
	now := time.Now()
	keep := s.graves[:0]
	for _, g := range s.graves {
		if !final && now.Before(g.at) {
			keep = append(keep, g)
			continue
		}
		if err := os.Remove(g.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("removing an old segment file failed; it is removed at the next start", "path", g.path, "err", err)
		}
	}
	clear(s.graves[len(keep):])
	s.graves = keep
}

// Compaction. A logstore that receives few logs gets a small segment per
// FlushInterval; compaction merges a day's small segments (with the same
// columns) into one once there are compactMin of them, so a day has few
// files for queries to open. DuckDB does the copy (COPY ... TO parquet),
// on the writer goroutine between loads.
const (
	compactBelow = 65_536 // rows: a segment this small is merged
	compactMin   = 8
)

// compact merges small segments, at most one merge per call.
func (s *Store) compact(ctx context.Context, c *sql.Conn) {
	type cand struct {
		ls   *logstore
		day  int32
		segs []*segment
	}
	var todo *cand
	s.mu.RLock()
find:
	for _, ls := range s.logstores {
		for day, segs := range ls.segs {
			if small := mergeable(segs); small != nil {
				todo = &cand{ls, day, small}
				break find
			}
		}
	}
	s.mu.RUnlock()
	if todo == nil {
		return
	}
	if err := s.merge(ctx, c, todo.ls, todo.day, todo.segs); err != nil {
		s.m.compactionFailures.Inc()
		s.log.Error("merging small segments failed; they stay as they are", "project", todo.ls.key.project, "logstore", todo.ls.key.logstore, "segments", len(todo.segs), "err", err)
	}
}

// mergeable returns compactMin or more of a day's small segments with the
// same columns, or nil.
func mergeable(segs []*segment) []*segment {
	byKey := map[string][]*segment{}
	for _, sg := range segs {
		if sg.rows < compactBelow {
			byKey[sg.fkey] = append(byKey[sg.fkey], sg)
		}
	}
	for _, small := range byKey {
		if len(small) >= compactMin {
			return small
		}
	}
	return nil
}

func (s *Store) merge(ctx context.Context, c *sql.Conn, ls *logstore, day int32, segs []*segment) (err error) {
	paths := make([]string, len(segs))
	out := &segment{day: day, fields: segs[0].fields, fkey: segs[0].fkey, minTime: segs[0].minTime, maxTime: segs[0].maxTime}
	for i, sg := range segs {
		paths[i] = segmentPath(s.cfg.DataDir, ls.id, sg.id)
		out.rows += sg.rows
		out.minTime, out.maxTime = min(out.minTime, sg.minTime), max(out.maxTime, sg.maxTime)
	}
	s.nextSeg++
	out.id = s.nextSeg
	path := segmentPath(s.cfg.DataDir, ls.id, out.id)
	tmp := path + ".tmp"
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
			_ = os.Remove(path)
		}
	}()
	q := "COPY (SELECT * FROM " + readParquet(paths, false) + ") TO " + quoteString(tmp) +
		" (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE " + strconv.Itoa(segmentRowGroup) + ")"
	if _, err := c.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	f, err := os.Open(tmp)
	if err != nil {
		return err
	}
	if out.bytes, err = publish(f, tmp, path); err != nil {
		return err
	}
	tx, err := c.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := deleteSegments(ctx, tx, segs); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := insertSegment(ctx, tx, ls.id, out); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	s.mu.Lock()
	ls.replaceSegments(day, segs, out)
	s.mu.Unlock()
	s.bury(paths...)
	s.m.compactions.Inc()
	return nil
}
