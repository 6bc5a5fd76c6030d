package duckdb

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/sluicelog/sluice/internal/fsutil"
	"github.com/sluicelog/sluice/server/index"
)

// A segment is one Parquet file of a logstore's logs of one UTC day,
// written by the loader (see the package documentation, "Ingestion").
// Segments are immutable; compaction replaces small ones by one larger.
type segment struct {
	id      int64
	day     int32
	rows    int64
	bytes   int64 // file size
	minTime int64 // __time__ range, inclusive
	maxTime int64
	fields  []fieldColumn // typed columns in the file
	fkey    string        // fields as JSON: segments with equal fkey can be merged by copying
	stats   string        // Shared: statistics as JSON (stats.go); "" = none
}

func segmentPath(dataDir string, lsID, id int64) string {
	return filepath.Join(dataDir, segmentsDir, "ls"+strconv.FormatInt(lsID, 10), strconv.FormatInt(id, 10)+".parquet")
}

const segmentsDir = "segments"

// fieldType returns the type of key's column in the segment.
func (sg *segment) fieldType(key string) (string, bool) {
	for _, f := range sg.fields {
		if f.Key == key {
			return f.Type, true
		}
	}
	return "", false
}

// span is one value of a bytes column: data[off : off+n].
type span struct{ off, n uint32 }

// column is one column of a part's rows. Which slice is used depends on
// the column's type; null is set only for field columns (nil: no NULLs).
type column struct {
	ints   []int64   // BIGINT, INTEGER
	floats []float64 // DOUBLE
	spans  []span    // VARCHAR, BLOB
	data   []byte
	null   []bool
}

// pqLayout is how a schema's rows are written to Parquet: the file schema
// and, per table column (fixed columns, then fields), its leaf index
// (parquet-go orders a group's fields by name) and kind.
type pqLayout struct {
	schema *parquet.Schema
	leaf   []int
	kind   []colKind
}

type colKind uint8

const (
	kindInt64 colKind = iota
	kindInt32
	kindDouble
	kindBytes
)

var zstdCodec = &zstd.Codec{Level: zstd.SpeedFastest}

// layout returns (building once) the Parquet layout of the schema.
func (s *schema) layout() *pqLayout {
	s.pqOnce.Do(func() {
		dict := func(n parquet.Node) parquet.Node {
			return parquet.Compressed(parquet.Encoded(n, &parquet.RLEDictionary), zstdCodec)
		}
		plain := func(n parquet.Node) parquet.Node { return parquet.Compressed(n, zstdCodec) }
		g := parquet.Group{}
		var names []string
		var kinds []colKind
		add := func(name string, n parquet.Node, k colKind) {
			g[name] = n
			names = append(names, name)
			kinds = append(kinds, k)
		}
		add(ColTime, plain(parquet.Int(64)), kindInt64)
		add(ColTimeNs, plain(parquet.Int(32)), kindInt32)
		add(ColTopic, dict(parquet.String()), kindBytes)
		add(ColSource, dict(parquet.String()), kindBytes)
		add(ColTags, dict(parquet.String()), kindBytes)
		add(ColReceiveTime, plain(parquet.Int(64)), kindInt64)
		add(ColContents, plain(parquet.Leaf(parquet.ByteArrayType)), kindBytes)
		// Dictionary first: repetitive lines (and values) compress and scan
		// far better; DictionaryMaxBytes falls back to plain for unique ones.
		add(ColLine, dict(parquet.String()), kindBytes)
		for _, f := range s.fields {
			switch f.Type {
			case index.TypeLong:
				add(f.Key, plain(parquet.Optional(parquet.Int(64))), kindInt64)
			case index.TypeDouble:
				add(f.Key, plain(parquet.Optional(parquet.Leaf(parquet.DoubleType))), kindDouble)
			default:
				add(f.Key, dict(parquet.Optional(parquet.String())), kindBytes)
			}
		}
		l := &pqLayout{schema: parquet.NewSchema("log", g), kind: kinds}
		idx := map[string]int{}
		for i, f := range l.schema.Fields() {
			idx[f.Name()] = i
		}
		for _, n := range names {
			l.leaf = append(l.leaf, idx[n])
		}
		s.pq = l
	})
	return s.pq
}

// segmentRowGroup is the rows per Parquet row group: DuckDB scans a
// file's row groups in parallel and skips them by their min/max.
const segmentRowGroup = 65_536

// writeSegment writes parts (all of one logstore day and schema) to path
// as one Parquet file, fsynced, via a temporary name. Row groups are
// encoded in parallel.
func writeSegment(path string, sch *schema, parts []*part) (sg segment, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return sg, err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return sg, err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	l := sch.layout()
	w := parquet.NewWriter(f, l.schema,
		parquet.DictionaryMaxBytes(2<<20),
		parquet.PageBufferSize(1<<20),
		parquet.CreatedBy("sluice", "", ""))
	sg.minTime, sg.maxTime = math.MaxInt64, math.MinInt64
	// Cut the parts into row groups: ranges of (part, row) pairs.
	type rng struct{ p, r0, p1, r1 int } // from parts[p] row r0 to parts[p1] row r1 (exclusive)
	var rgs []rng
	cur, n := rng{}, 0
	for pi, p := range parts {
		sg.rows += int64(p.n)
		for _, t := range p.cols[colTime].ints {
			sg.minTime, sg.maxTime = min(sg.minTime, t), max(sg.maxTime, t)
		}
		r := 0
		for r < p.n {
			take := min(p.n-r, segmentRowGroup-n)
			r += take
			n += take
			if n == segmentRowGroup {
				cur.p1, cur.r1 = pi, r
				rgs = append(rgs, cur)
				cur, n = rng{p: pi, r0: r}, 0
			}
		}
	}
	if n > 0 {
		cur.p1, cur.r1 = len(parts)-1, parts[len(parts)-1].n
		rgs = append(rgs, cur)
	}
	groups := make([]*parquet.ConcurrentRowGroupWriter, len(rgs))
	errs := make([]error, len(rgs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i, rg := range rgs {
		groups[i] = w.BeginRowGroup()
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = fillRowGroup(groups[i], l, parts, rg.p, rg.r0, rg.p1, rg.r1)
		}()
	}
	wg.Wait()
	for i := range groups {
		if errs[i] != nil {
			return sg, errs[i]
		}
		if _, err := groups[i].Commit(); err != nil {
			return sg, err
		}
	}
	if err := w.Close(); err != nil {
		return sg, err
	}
	sg.bytes, err = publish(f, tmp, path)
	return sg, err
}

// publish makes the file f, written at tmp, durable under path: fsync,
// close, rename, fsync of the directory. It returns the file's size and
// closes f either way.
func publish(f *os.File, tmp, path string) (int64, error) {
	st, err := f.Stat()
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return 0, err
	}
	return st.Size(), fsutil.SyncDir(filepath.Dir(path))
}

// fillRowGroup writes the rows from parts[p0] row r0 to parts[p1] row r1
// (exclusive) column by column.
func fillRowGroup(rg *parquet.ConcurrentRowGroupWriter, l *pqLayout, parts []*part, p0, r0, p1, r1 int) error {
	cws := rg.ColumnWriters()
	buf := make([]parquet.Value, 0, 4096)
	for c, leaf := range l.leaf {
		cw := cws[leaf]
		flush := func() error {
			if _, err := cw.WriteRowValues(buf); err != nil {
				return fmt.Errorf("column %d: %w", c, err)
			}
			buf = buf[:0]
			return nil
		}
		def := 0
		if c >= nFixed {
			def = 1 // field columns are optional
		}
		for pi := p0; pi <= p1; pi++ {
			p := parts[pi]
			from, to := 0, p.n
			if pi == p0 {
				from = r0
			}
			if pi == p1 {
				to = r1
			}
			col := &p.cols[c]
			for from < to {
				// Fill buf up to its capacity, then hand it over.
				n := min(to-from, cap(buf)-len(buf))
				k := len(buf)
				buf = buf[:k+n]
				out := buf[k:]
				switch l.kind[c] {
				case kindInt64:
					for j, x := range col.ints[from : from+n] {
						out[j] = parquet.Int64Value(x).Level(0, def, leaf)
					}
				case kindInt32:
					for j, x := range col.ints[from : from+n] {
						out[j] = parquet.Int32Value(int32(x)).Level(0, def, leaf)
					}
				case kindDouble:
					for j, x := range col.floats[from : from+n] {
						out[j] = parquet.DoubleValue(x).Level(0, def, leaf)
					}
				default:
					data := col.data
					for j, sp := range col.spans[from : from+n] {
						out[j] = parquet.ByteArrayValue(data[sp.off:sp.off+sp.n:sp.off+sp.n]).Level(0, def, leaf)
					}
				}
				if def == 1 {
					for j, null := range col.null[from : from+n] {
						if null {
							out[j] = parquet.Value{}.Level(0, 0, leaf)
						}
					}
				}
				from += n
				if len(buf) == cap(buf) {
					if err := flush(); err != nil {
						return err
					}
				}
			}
		}
		if len(buf) > 0 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return rg.Flush()
}

// readParquet returns a read_parquet call over the files; with refs, rows
// have the file's name (filename) and their row number in it
// (file_row_number).
func readParquet(paths []string, refs bool) string {
	var b strings.Builder
	b.WriteString("read_parquet([")
	for i, p := range paths {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(quoteString(p))
	}
	b.WriteString("], union_by_name = true")
	if refs {
		b.WriteString(", filename = true, file_row_number = true")
	}
	b.WriteString(")")
	return b.String()
}
